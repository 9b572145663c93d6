// Command pause is a pod's sandbox process: it holds the pod's namespaces
// open and exits cleanly when the runtime stops the pod.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	// As PID 1 the process gets no default handlers, so without these the
	// runtime's SIGTERM would be ignored and every pod stop would time out.
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
