package main

func proxyCommand() *command {
	return &command{
		name:    "proxy",
		summary: "run a proxy that forwards client connections to the owning broker",
		pending: "no issue planned yet",
	}
}
