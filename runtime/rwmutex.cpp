// runtime/rwmutex.cpp — see api/include/rt/rwmutex.hpp.
#include "rt/rwmutex.hpp"
