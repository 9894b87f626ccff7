#include "host/task.h"
