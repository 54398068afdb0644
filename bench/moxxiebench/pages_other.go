//go:build !linux

package main

import (
	"errors"
	"time"
)

// touchPages is only implemented on Linux.
func touchPages(int, bool) (time.Duration, float64, error) {
	return 0, 0, errors.New("the page probe needs Linux")
}
