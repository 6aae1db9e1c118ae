/* placeholder */
#include "fl_log.h"
