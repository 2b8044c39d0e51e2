// runtime/group.cpp — see api/include/rt/group.hpp.
#include "rt/group.hpp"
