//go:build !linux

package main

import (
	"os"
	"os/exec"
)

// killWithParent has no parent-death signal to use outside Linux; TestMain
// still stops the server when the tests end normally.
func killWithParent(*exec.Cmd) {}

func fastTempDir() string { return os.TempDir() }
