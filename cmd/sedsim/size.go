package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseSize reads a size in bytes: a whole number, optionally followed by
// K, M, G or T (also KiB, MiB, GiB, TiB), which are powers of 1024.
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	end := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(t)
	}
	num, unit := t[:end], strings.ToUpper(t[end:])
	var shift uint
	switch unit {
	case "", "B":
	case "K", "KIB":
		shift = 10
	case "M", "MIB":
		shift = 20
	case "G", "GIB":
		shift = 30
	case "T", "TIB":
		shift = 40
	default:
		return 0, fmt.Errorf("size %q: want a whole number with an optional unit K, M, G or T (powers of 1024), such as 64M or 1G", s)
	}
	if num == "" {
		return 0, fmt.Errorf("size %q: want a whole number with an optional K, M, G or T, such as 64M", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxUint64>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << shift, nil
}

// formatSize renders n bytes for people: "1 GiB", "1536 KiB", "1000 bytes".
func formatSize(n uint64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
