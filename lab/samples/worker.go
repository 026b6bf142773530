package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// runWorker consumes work items from WORK_URL (the echo sample's /job) and logs each one: a
// workload with no Service and no inbound traffic, the case `tp replace` exists for.
func runWorker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ExitOnError)
	every := fs.Duration("every", 2*time.Second, "how often to take a job")
	_ = fs.Parse(args)
	url := env("WORK_URL", "http://echo/job")
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err != nil {
			log.Printf("no work from %s: %v", url, err)
		} else {
			var job struct {
				Job int64  `json:"job"`
				Pod string `json:"pod"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&job)
			resp.Body.Close()
			log.Printf("consumed job %d from %s as %s", job.Job, job.Pod, env("POD_NAME", "worker"))
		}
		<-tick.C
	}
}

// runPause blocks until it is told to stop, reaping orphans meanwhile: the lab's pod sandbox
// image, which is PID 1 of a pod that shares its process namespace.
func runPause(_ []string) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return nil
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
	return nil
}
