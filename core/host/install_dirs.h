/* Where an installed o2c finds its files without a checkout.  A binary is
 * "installed" when its share folder exists beside its bin/ folder (found
 * from /proc/self/exe, so a tree installed under DESTDIR or any prefix
 * works): PREFIX/share/o2c holds the default scripts/ and kb/, the example
 * config is PREFIX/etc/o2c/o2c.conf.lua (/etc/o2c for the /usr prefix), and
 * the data folder defaults to O2C_INSTALLED_DATA_DIR (/var/lib/o2c).  A
 * binary in a build tree has no such folder and keeps ./var, ./scripts, ./kb. */
#ifndef O2C_HOST_INSTALL_DIRS_H
#define O2C_HOST_INSTALL_DIRS_H

/* PREFIX/share/o2c, or NULL for a binary that is not installed. */
const char *install_share_dir(void);

/* The installed config file if it exists and is readable, else NULL. */
const char *install_config_file(void);

/* The installed binary's default data folder, or NULL when not installed. */
const char *install_data_dir(void);

#endif
