// tests/select_order_test.cpp — placeholder (issue 12).
#include <gtest/gtest.h>

TEST(Placeholder, select_order) {}
