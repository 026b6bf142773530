package main

import (
	"encoding/json"
	"fmt"
	"sync"

	"tp.invalid/netstack/internal/stack"
)

// The handle table: plain Go, so that it can be tested without cgo.

var (
	mu         sync.Mutex
	instances  = map[int64]*stack.Instance{}
	lastHandle int64
)

func start(cfgJSON string) (int64, error) {
	cfg, err := stack.ParseInstanceConfig([]byte(cfgJSON))
	if err != nil {
		return -1, err
	}
	inst, err := stack.Start(cfg)
	if err != nil {
		return -1, err
	}
	mu.Lock()
	defer mu.Unlock()
	lastHandle++
	instances[lastHandle] = inst
	return lastHandle, nil
}

func lookup(h int64) (*stack.Instance, error) {
	mu.Lock()
	defer mu.Unlock()
	if inst, ok := instances[h]; ok {
		return inst, nil
	}
	return nil, fmt.Errorf("unknown netstack handle %d", h)
}

func addRoute(h int64, cidr string) error {
	inst, err := lookup(h)
	if err != nil {
		return err
	}
	return inst.AddRoute(cidr)
}

func removeRoute(h int64, cidr string) error {
	inst, err := lookup(h)
	if err != nil {
		return err
	}
	return inst.RemoveRoute(cidr)
}

func statsJSON(h int64) (string, error) {
	inst, err := lookup(h)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(inst.Stats())
	return string(b), err
}

// resetFlow aborts one flow of the instance: true if it was open and is now reset.
func resetFlow(h int64, id uint64) (bool, error) {
	inst, err := lookup(h)
	if err != nil {
		return false, err
	}
	return inst.ResetFlow(id), nil
}

// stop removes the handle first, so that concurrent calls see it unknown at once, and then
// tears the instance down. Unknown handles are ignored.
func stop(h int64) {
	mu.Lock()
	inst := instances[h]
	delete(instances, h)
	mu.Unlock()
	if inst != nil {
		inst.Stop()
	}
}
