module tp.invalid/netstack

go 1.26
