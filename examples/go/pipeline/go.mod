module example/pipeline

go 1.19
