package main

import (
	"os"
	"os/exec"
	"syscall"
)

// killWithParent stops postgres at once should the test binary die without
// cleaning up (a -timeout panic, a kill), so no server outlives the tests.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
}

// fastTempDir puts throwaway clusters in memory when there is room: on a
// plain disk CREATE DATABASE takes about a second, on tmpfs a tenth of that.
func fastTempDir() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Bavail*uint64(st.Bsize) >= 1<<30 {
		if f, err := os.CreateTemp("/dev/shm", "pgtest-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}
