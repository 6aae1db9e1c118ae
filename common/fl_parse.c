/* placeholder */
#include "fl_parse.h"
