module rtcsp/peers/go

go 1.19
