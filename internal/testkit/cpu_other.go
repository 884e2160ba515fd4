//go:build !unix

package testkit

import "time"

// ProcessCPU is the process's CPU time so far; it is not measured on this
// platform and is always 0.
func ProcessCPU() time.Duration { return 0 }
