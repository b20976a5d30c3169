package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// sample is the figures of repeated runs of one measurement.
type sample []float64

func (s sample) sorted() []float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// median returns the median, NaN when s is empty.
func (s sample) median() float64 {
	c := s.sorted()
	switch n := len(c); {
	case n == 0:
		return math.NaN()
	case n%2 == 1:
		return c[n/2]
	default:
		return (c[n/2-1] + c[n/2]) / 2
	}
}

func (s sample) min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

func (s sample) max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// spread formats the median with the range of the runs, using f for each.
func (s sample) spread(f func(float64) string) string {
	if len(s) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.median()), f(s.min()), f(s.max()))
}

// percentile returns the p-quantile (0..1) of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Formatting helpers for the tables.

func fmtRate(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtFloat(prec int) func(float64) string {
	return func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmt.Sprintf("%.*f", prec, v)
	}
}

func fmtMiB(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}

func fmtMS(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", v)
}

func fmtPct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

// verdict says whether a goal is met.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
