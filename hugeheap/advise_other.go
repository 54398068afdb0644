//go:build !linux

package hugeheap

import "errors"

func adviseHuge(Span) error { return errors.ErrUnsupported }

func collapse(Span) error { return errors.ErrUnsupported }
