package quota

import (
	"math"
	"testing"
)

func TestForecast(t *testing.T) {
	const (
		day = 86400
		t0  = 1793491200 // 2026-11-01T00:00:00Z
	)
	// daily returns one point a day from t0 with the given values.
	daily := func(values ...float64) []Point {
		ps := make([]Point, len(values))
		for i, v := range values {
			ps[i] = Point{Time: t0 + int64(i)*day, Value: v}
		}
		return ps
	}
	cases := []struct {
		name     string
		points   []Point
		capacity float64
		now      int64
		window   int64
		wantDays float64
		tol      float64
		wantOK   bool
	}{
		{
			// 10 a day, 30 at now: 70 more take 7 days.
			name:   "linear growth",
			points: daily(10, 20, 30), capacity: 100, now: t0 + 2*day, window: 30 * day,
			wantDays: 7, wantOK: true,
		},
		{
			// x = −3..0 days, mean −1.5; y mean 25. Sxy = 1.5·15 + 0.5·3 +
			// 0.5·3 + 1.5·15 = 48, Sxx = 5, slope 9.6/day; at now the line
			// is 25 + 1.5·9.6 = 39.4, so (100 − 39.4)/9.6 = 6.3125 days. The
			// tolerance only absorbs float rounding.
			name:   "noisy growth",
			points: daily(10, 22, 28, 40), capacity: 100, now: t0 + 3*day, window: 30 * day,
			wantDays: 6.3125, tol: 1e-9, wantOK: true,
		},
		{
			// The line is at 35 half a day after the last point: 6.5 days.
			name:   "now between samples",
			points: daily(10, 20, 30), capacity: 100, now: t0 + 2*day + day/2, window: 30 * day,
			wantDays: 6.5, wantOK: true,
		},
		{
			name:   "flat",
			points: daily(50, 50, 50, 50), capacity: 100, now: t0 + 3*day, window: 30 * day,
		},
		{
			name:   "shrinking",
			points: daily(30, 20, 10), capacity: 100, now: t0 + 2*day, window: 30 * day,
		},
		{
			name:   "single point",
			points: daily(50), capacity: 100, now: t0, window: 30 * day,
		},
		{
			name:   "one time twice",
			points: []Point{{t0, 10}, {t0, 90}}, capacity: 100, now: t0, window: 30 * day,
		},
		{
			name:   "no points",
			points: nil, capacity: 100, now: t0, window: 30 * day,
		},
		{
			// The old points would make the trend negative; the point at
			// exactly now − window is outside too.
			name: "points outside the window are ignored",
			points: append([]Point{{t0 - 30*day, 95}, {t0 - 3*day, 90}},
				daily(10, 20, 30)...),
			capacity: 100, now: t0 + 2*day, window: 5 * day,
			wantDays: 7, wantOK: true,
		},
		{
			name:   "already full",
			points: daily(90, 100, 110), capacity: 100, now: t0 + 2*day, window: 30 * day,
			wantDays: 0, wantOK: true,
		},
		{
			name:   "exactly full",
			points: daily(80, 90, 100), capacity: 100, now: t0 + 2*day, window: 30 * day,
			wantDays: 0, wantOK: true,
		},
		{
			name:   "not a number",
			points: daily(10, math.NaN(), 30), capacity: 100, now: t0 + 2*day, window: 30 * day,
		},
		{
			name:   "infinite capacity",
			points: daily(10, 20, 30), capacity: math.Inf(1), now: t0 + 2*day, window: 30 * day,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			days, ok := Forecast(tc.points, tc.capacity, tc.now, tc.window)
			if ok != tc.wantOK || math.Abs(days-tc.wantDays) > tc.tol {
				t.Fatalf("Forecast() = %v, %v; want %v ± %v, %v", days, ok, tc.wantDays, tc.tol, tc.wantOK)
			}
		})
	}
}
