/* placeholder */
#include "fl_wire.h"
