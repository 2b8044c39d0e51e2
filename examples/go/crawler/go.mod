module example/crawler

go 1.19
