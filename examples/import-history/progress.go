package main

import (
	"fmt"
	"io"
	"strings"
)

// progress draws "[#####.....] 20/40" on one terminal line.
type progress struct {
	w     io.Writer
	total int
	drawn bool
}

func (p *progress) update(n int) {
	const width = 30
	filled := width
	if p.total > 0 {
		filled = n * width / p.total
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, p.total)
	p.drawn = true
}

// done ends the bar's line so that other output starts on a new one.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
