#include <stdio.h>
int main(void)
{
    puts("o2c " O2C_VERSION);
    return 0;
}
