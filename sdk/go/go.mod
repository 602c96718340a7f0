module github.com/wshub/wshub-go

go 1.19
