module tp.invalid/lab/samples

go 1.26
