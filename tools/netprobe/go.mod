module netprobe

go 1.24
