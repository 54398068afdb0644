package quota

import "math"

// Point is one sample of a usage history: a time in unix seconds and the
// value measured then.
type Point struct {
	Time  int64   `json:"time"`
	Value float64 `json:"value"`
}

// Forecast estimates in how many days usage reaches capacity. It fits an
// ordinary least squares line through the points with Time > now-window
// (window in seconds) and returns the days from now until the line reaches
// capacity, or 0 if the line's value at now is already at or above it. It
// returns ok false when the line never reaches capacity: fewer than two
// distinct times lie in the window, the slope is not positive, or a value
// is not finite. The result depends only on the arguments.
func Forecast(points []Point, capacity float64, now int64, window int64) (days float64, ok bool) {
	// Times are taken relative to now and in days, so that their squares
	// stay small and exact for whole-day offsets.
	var (
		n          int
		sumX, sumY float64
		first      int64
		distinct   bool
	)
	for _, p := range points {
		if p.Time <= now-window {
			continue
		}
		if n == 0 {
			first = p.Time
		} else if p.Time != first {
			distinct = true
		}
		n++
		sumX += dayOffset(p.Time, now)
		sumY += p.Value
	}
	if !distinct {
		return 0, false
	}
	meanX, meanY := sumX/float64(n), sumY/float64(n)
	var sxx, sxy float64
	for _, p := range points {
		if p.Time <= now-window {
			continue
		}
		dx := dayOffset(p.Time, now) - meanX
		sxx += dx * dx
		sxy += dx * (p.Value - meanY)
	}
	slope := sxy / sxx
	if !(slope > 0) || math.IsInf(slope, 0) {
		return 0, false
	}
	atNow := meanY - slope*meanX
	if atNow >= capacity {
		return 0, true
	}
	days = (capacity - atNow) / slope
	if math.IsNaN(days) || math.IsInf(days, 0) {
		return 0, false
	}
	return days, true
}

func dayOffset(t, now int64) float64 {
	return float64(t-now) / 86400
}
