module example/rate_limited_pool

go 1.19
