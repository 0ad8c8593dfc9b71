// The sandbox ("pause") process of every pod in LabHub's test cluster: it holds the pod's namespaces open, reaps
// any orphan that ends up as its child, and exits when containerd stops the sandbox. No registry is reachable here,
// so the cluster cannot pull registry.k8s.io/pause; this is built from source instead.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
