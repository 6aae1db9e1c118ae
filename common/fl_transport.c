/* placeholder */
#include "fl_transport.h"
