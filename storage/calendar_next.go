package storage

import (
	"math/bits"
	"time"
)

// searchYears bounds how far Next and last look for an event. The
// Gregorian calendar repeats its dates and weekdays every 400 years, so a
// calendar without an event in that span has none at all.
const searchYears = 400

// Next returns the first event of c strictly after t, in UTC, or the zero
// time if there is none within 400 years (as for "*-02-30" or a year
// list that has passed). It jumps field by field (year, month, day,
// hour, minute, second) instead of stepping through the time.
func (c *Calendar) Next(t time.Time) time.Time {
	if c.never {
		return time.Time{}
	}
	// The first whole second after t.
	cur := cursorAt(t.Unix() + 1)
	limit := cur.y + searchYears
	for cur.y <= limit {
		if !c.years.has(cur.y) {
			y, ok := c.years.next(cur.y)
			if !ok {
				return time.Time{}
			}
			cur = cursor{y: y, mo: 1, d: 1}
			continue
		}
		mo := nextBit(c.months, cur.mo)
		if mo < 0 {
			cur = cursor{y: cur.y + 1, mo: 1, d: 1}
			continue
		}
		if mo != cur.mo {
			cur = cursor{y: cur.y, mo: mo, d: 1}
		}
		d := c.nextDay(cur.y, cur.mo, cur.d)
		if d < 0 {
			cur.nextMonth()
			continue
		}
		if d != cur.d {
			cur.d, cur.h, cur.mi, cur.s = d, 0, 0, 0
		}
		h := nextBit(c.hours, cur.h)
		if h < 0 {
			cur.nextDay()
			continue
		}
		if h != cur.h {
			cur.h, cur.mi, cur.s = h, 0, 0
		}
		mi := nextBit(c.minutes, cur.mi)
		if mi < 0 {
			cur.nextHour()
			continue
		}
		if mi != cur.mi {
			cur.mi, cur.s = mi, 0
		}
		s := nextBit(c.seconds, cur.s)
		if s < 0 {
			cur.nextMinute()
			continue
		}
		cur.s = s
		return cur.time()
	}
	return time.Time{}
}

// last returns the last event of c at or before t, in UTC, or the zero
// time if there is none within 400 years. It mirrors Next.
func (c *Calendar) last(t time.Time) time.Time {
	if c.never {
		return time.Time{}
	}
	cur := cursorAt(t.Unix())
	limit := cur.y - searchYears
	for cur.y >= limit {
		if !c.years.has(cur.y) {
			y, ok := c.years.prev(cur.y)
			if !ok {
				return time.Time{}
			}
			cur = endOfDay(y, 12, 31)
			continue
		}
		mo := prevBit(c.months, cur.mo)
		if mo < 0 {
			cur = endOfDay(cur.y-1, 12, 31)
			continue
		}
		if mo != cur.mo {
			cur = endOfDay(cur.y, mo, daysIn(cur.y, mo))
		}
		d := c.prevDay(cur.y, cur.mo, cur.d)
		if d < 0 {
			cur.prevMonth()
			continue
		}
		if d != cur.d {
			cur = endOfDay(cur.y, cur.mo, d)
		}
		h := prevBit(c.hours, cur.h)
		if h < 0 {
			cur.prevDay()
			continue
		}
		if h != cur.h {
			cur.h, cur.mi, cur.s = h, 59, 59
		}
		mi := prevBit(c.minutes, cur.mi)
		if mi < 0 {
			cur.prevHour()
			continue
		}
		if mi != cur.mi {
			cur.mi, cur.s = mi, 59
		}
		s := prevBit(c.seconds, cur.s)
		if s < 0 {
			cur.prevMinute()
			continue
		}
		cur.s = s
		return cur.time()
	}
	return time.Time{}
}

// nextDay returns the first day of month y-mo at or after d that is one
// of c's days and falls on one of c's weekdays, or -1.
func (c *Calendar) nextDay(y, mo, d int) int {
	cand := c.days &^ (1<<d - 1) & dayMaskThrough(daysIn(y, mo))
	if c.wdays == allWeekdays || cand == 0 {
		return lowest(cand)
	}
	wd := weekdayOf(y, mo, d)
	for ; cand != 0; cand &= cand - 1 {
		day := bits.TrailingZeros64(cand)
		if c.wdays&(1<<((wd+day-d)%7)) != 0 {
			return day
		}
	}
	return -1
}

// prevDay returns the last day of month y-mo at or before d that is one
// of c's days and falls on one of c's weekdays, or -1.
func (c *Calendar) prevDay(y, mo, d int) int {
	cand := c.days & dayMaskThrough(d)
	if c.wdays == allWeekdays || cand == 0 {
		return highest(cand)
	}
	wd := weekdayOf(y, mo, d)
	for cand != 0 {
		day := highest(cand)
		if c.wdays&(1<<((wd-(d-day)%7+7)%7)) != 0 {
			return day
		}
		cand &^= 1 << day
	}
	return -1
}

// has reports whether y is in s; a nil set holds every year.
func (s *yearSet) has(y int) bool {
	if s == nil {
		return true
	}
	return 0 <= y && y <= maxYear && s[y/64]&(1<<(y%64)) != 0
}

// next returns the first year of s after y.
func (s *yearSet) next(y int) (int, bool) {
	for y = max(y+1, 0); y <= maxYear; y = (y/64 + 1) * 64 {
		if rest := s[y/64] >> (y % 64); rest != 0 {
			return y + bits.TrailingZeros64(rest), true
		}
	}
	return 0, false
}

// prev returns the last year of s before y.
func (s *yearSet) prev(y int) (int, bool) {
	for y = min(y-1, maxYear); y >= 0; y = y/64*64 - 1 {
		if v := prevBit(s[y/64], y%64); v >= 0 {
			return y/64*64 + v, true
		}
	}
	return 0, false
}

// nextBit returns the lowest bit of set at or above v, or -1.
func nextBit(set uint64, v int) int {
	if rest := set >> v; rest != 0 {
		return v + bits.TrailingZeros64(rest)
	}
	return -1
}

// prevBit returns the highest bit of set at or below v, or -1.
func prevBit(set uint64, v int) int {
	return highest(set & (2<<v - 1))
}

// lowest returns the lowest bit of set, or -1 if it is empty.
func lowest(set uint64) int {
	if set == 0 {
		return -1
	}
	return bits.TrailingZeros64(set)
}

// highest returns the highest bit of set, or -1 if it is empty.
func highest(set uint64) int {
	return 63 - bits.LeadingZeros64(set)
}

// dayMaskThrough returns the bits of days 1 through n.
func dayMaskThrough(n int) uint64 { return (2<<n - 1) &^ 1 }

// cursor is a UTC civil time: year, month, day, hour, minute, second.
type cursor struct {
	y, mo, d, h, mi, s int
}

// cursorAt returns the cursor of a Unix time.
func cursorAt(unix int64) cursor {
	days := unix / 86400
	secs := unix % 86400
	if secs < 0 {
		days--
		secs += 86400
	}
	y, mo, d := civil(days)
	return cursor{y: y, mo: mo, d: d, h: int(secs / 3600), mi: int(secs / 60 % 60), s: int(secs % 60)}
}

// endOfDay returns the cursor of 23:59:59 on y-mo-d.
func endOfDay(y, mo, d int) cursor {
	return cursor{y: y, mo: mo, d: d, h: 23, mi: 59, s: 59}
}

// time returns the cursor as a time.Time in UTC.
func (c cursor) time() time.Time {
	unix := daysFromCivil(c.y, c.mo, c.d)*86400 + int64(c.h*3600+c.mi*60+c.s)
	return time.Unix(unix, 0).UTC()
}

// nextMonth moves c to the start of the next month.
func (c *cursor) nextMonth() {
	if c.mo == 12 {
		*c = cursor{y: c.y + 1, mo: 1, d: 1}
		return
	}
	*c = cursor{y: c.y, mo: c.mo + 1, d: 1}
}

// nextDay moves c to the start of the next day.
func (c *cursor) nextDay() {
	if c.d == daysIn(c.y, c.mo) {
		c.nextMonth()
		return
	}
	*c = cursor{y: c.y, mo: c.mo, d: c.d + 1}
}

// nextHour moves c to the start of the next hour.
func (c *cursor) nextHour() {
	if c.h == 23 {
		c.nextDay()
		return
	}
	c.h, c.mi, c.s = c.h+1, 0, 0
}

// nextMinute moves c to the start of the next minute.
func (c *cursor) nextMinute() {
	if c.mi == 59 {
		c.nextHour()
		return
	}
	c.mi, c.s = c.mi+1, 0
}

// prevMonth moves c to the end of the previous month.
func (c *cursor) prevMonth() {
	if c.mo == 1 {
		*c = endOfDay(c.y-1, 12, 31)
		return
	}
	*c = endOfDay(c.y, c.mo-1, daysIn(c.y, c.mo-1))
}

// prevDay moves c to the end of the previous day.
func (c *cursor) prevDay() {
	if c.d == 1 {
		c.prevMonth()
		return
	}
	*c = endOfDay(c.y, c.mo, c.d-1)
}

// prevHour moves c to the end of the previous hour.
func (c *cursor) prevHour() {
	if c.h == 0 {
		c.prevDay()
		return
	}
	c.h, c.mi, c.s = c.h-1, 59, 59
}

// prevMinute moves c to the end of the previous minute.
func (c *cursor) prevMinute() {
	if c.mi == 0 {
		c.prevHour()
		return
	}
	c.mi, c.s = c.mi-1, 59
}

// daysIn returns the number of days of month mo of year y.
func daysIn(y, mo int) int {
	switch mo {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// weekdayOf returns the time.Weekday number of y-mo-d.
func weekdayOf(y, mo, d int) int {
	// 1970-01-01 was a Thursday (4).
	return int(((daysFromCivil(y, mo, d)+4)%7 + 7) % 7)
}

// daysFromCivil returns the number of days from 1970-01-01 to y-mo-d in
// the proleptic Gregorian calendar (Howard Hinnant's days_from_civil).
func daysFromCivil(y, mo, d int) int64 {
	yy := int64(y)
	if mo <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 && yy%400 != 0 {
		era--
	}
	yoe := yy - era*400
	m := int64(mo)
	if m > 2 {
		m -= 3
	} else {
		m += 9
	}
	doy := (153*m+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civil returns the date that is days after 1970-01-01 (Howard Hinnant's
// civil_from_days).
func civil(days int64) (y, mo, d int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		mo = int(mp + 3)
	} else {
		mo = int(mp - 9)
	}
	y = int(yoe + era*400)
	if mo <= 2 {
		y++
	}
	return y, mo, d
}
