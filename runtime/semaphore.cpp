// runtime/semaphore.cpp — see api/include/rt/semaphore.hpp.
#include "rt/semaphore.hpp"
