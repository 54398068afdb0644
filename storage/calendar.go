package storage

import (
	"fmt"
	"strconv"
	"strings"
)

// Calendar is a parsed Proxmox calendar event, the schedule format of
// Proxmox VE and Proxmox Backup Server, itself a subset of systemd's
// calendar events (man 7 systemd.time):
//
//	[WEEKDAY] [[YEARS-]MONTH-DAY] [HOURS:MINUTES[:SECONDS]]
//
// Weekdays are mon, tue, wed, thu, fri, sat and sun (or their full
// names, in any case), as lists ("mon,wed") and ranges ("mon..fri", or
// "sat..mon" across the week's end). Every numeric field takes "*", a
// number, a list "a,b", a range "a..b" and repetitions "a/step",
// "a..b/step" and "*/step". As in Proxmox, a time without a colon is the
// minutes of every hour: "*/15" is every 15 minutes, "5" five past every
// hour. Omitted seconds are 0; with the time omitted a weekday or date
// means 00:00. The words minutely, hourly, daily, weekly, monthly, yearly
// (annually), quarterly and semiannually (semi-annually) stand for the
// events systemd defines for them. A trailing "UTC" is accepted; every
// Calendar is evaluated in UTC.
//
// A Calendar is immutable and safe for concurrent use. Build one with
// ParseCalendar.
type Calendar struct {
	src     string
	years   *yearSet // nil means every year
	months  uint64   // bits 1..12
	days    uint64   // bits 1..31
	wdays   uint64   // bits 0..6, Sunday is 0 as in time.Weekday
	hours   uint64   // bits 0..23
	minutes uint64   // bits 0..59
	seconds uint64   // bits 0..59
	never   bool     // no month holds any of the days: Next finds nothing
}

// maxCalendarLen bounds the source text of a calendar event.
const maxCalendarLen = 256

// maxYear is the last year a year field may name, as in Proxmox.
const maxYear = 2199

// yearWords is the number of words in a yearSet.
const yearWords = maxYear/64 + 1

// yearSet is the set of years a calendar's year field names.
type yearSet [yearWords]uint64

// calField describes one numeric field of a calendar event.
type calField struct {
	name     string
	min, max int
}

var (
	fieldYear   = calField{"year", 0, maxYear}
	fieldMonth  = calField{"month", 1, 12}
	fieldDay    = calField{"day", 1, 31}
	fieldHour   = calField{"hour", 0, 23}
	fieldMinute = calField{"minute", 0, 59}
	fieldSecond = calField{"second", 0, 59}
)

// allWeekdays has a bit for each day of the week.
const allWeekdays = 1<<7 - 1

// weekdayNames maps the weekday names ParseCalendar accepts to
// time.Weekday numbers.
var weekdayNames = map[string]int{
	"sun": 0, "sunday": 0,
	"mon": 1, "monday": 1,
	"tue": 2, "tuesday": 2,
	"wed": 3, "wednesday": 3,
	"thu": 4, "thursday": 4,
	"fri": 5, "friday": 5,
	"sat": 6, "saturday": 6,
}

// specialEvents are the words that stand for a whole calendar event, with
// the event each one means.
var specialEvents = map[string]string{
	"minutely":      "*-*-* *:*:00",
	"hourly":        "*-*-* *:00:00",
	"daily":         "*-*-* 00:00:00",
	"weekly":        "mon *-*-* 00:00:00",
	"monthly":       "*-*-01 00:00:00",
	"yearly":        "*-01-01 00:00:00",
	"annually":      "*-01-01 00:00:00",
	"quarterly":     "*-01,04,07,10-01 00:00:00",
	"semiannually":  "*-01,07-01 00:00:00",
	"semi-annually": "*-01,07-01 00:00:00",
}

// ParseCalendar parses a Proxmox calendar event (see Calendar). Leading
// and trailing blanks are dropped; String returns the rest. Errors name
// the event and what is wrong with it, for example
// `calendar "mon..fry": unknown weekday "fry"`.
func ParseCalendar(s string) (*Calendar, error) {
	src := strings.TrimSpace(s)
	c, err := parseCalendar(src)
	if err != nil {
		return nil, fmt.Errorf("calendar %q: %w", src, err)
	}
	c.src = src
	return c, nil
}

// parseCalendar parses the trimmed text src.
func parseCalendar(src string) (*Calendar, error) {
	if len(src) > maxCalendarLen {
		return nil, fmt.Errorf("longer than %d characters", maxCalendarLen)
	}
	tokens := strings.Fields(src)
	if n := len(tokens); n > 1 && tokens[n-1] == "UTC" {
		tokens = tokens[:n-1]
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("empty; want [WEEKDAY] [[YEARS-]MONTH-DAY] [HOURS:MINUTES[:SECONDS]]")
	}
	if len(tokens) == 1 {
		if event, ok := specialEvents[tokens[0]]; ok {
			tokens = strings.Fields(event)
		}
	}
	c := &Calendar{
		months:  fieldMonth.all(),
		days:    fieldDay.all(),
		wdays:   allWeekdays,
		hours:   1,
		minutes: 1,
		seconds: 1,
	}
	i := 0
	if isLetter(tokens[i][0]) {
		wdays, err := parseWeekdays(tokens[i])
		if err != nil {
			return nil, err
		}
		c.wdays = wdays
		i++
	}
	if i < len(tokens) && strings.Contains(tokens[i], "-") {
		if err := c.parseDate(tokens[i]); err != nil {
			return nil, err
		}
		i++
	}
	if i < len(tokens) {
		if err := c.parseTime(tokens[i]); err != nil {
			return nil, err
		}
		i++
	}
	if i < len(tokens) {
		return nil, fmt.Errorf("unexpected %q after the time", tokens[i])
	}
	c.never = !c.someMonthHasADay()
	return c, nil
}

// isLetter reports whether b is an ASCII letter.
func isLetter(b byte) bool { return 'a' <= b|0x20 && b|0x20 <= 'z' }

// parseWeekdays parses a weekday list such as "mon,wed..fri".
func parseWeekdays(spec string) (uint64, error) {
	var set uint64
	for item := range strings.SplitSeq(spec, ",") {
		first, last, isRange := strings.Cut(item, "..")
		a, err := weekday(first)
		if err != nil {
			return 0, err
		}
		b := a
		if isRange {
			if b, err = weekday(last); err != nil {
				return 0, err
			}
		}
		// A range runs forward from a to b, across the week's end if
		// b comes before a ("sat..mon").
		for d := a; ; d = (d + 1) % 7 {
			set |= 1 << d
			if d == b {
				break
			}
		}
	}
	return set, nil
}

// weekday returns the time.Weekday number of a weekday name.
func weekday(name string) (int, error) {
	if name == "" {
		return 0, fmt.Errorf("empty weekday in a weekday list")
	}
	d, ok := weekdayNames[strings.ToLower(name)]
	if !ok {
		return 0, fmt.Errorf("unknown weekday %q", name)
	}
	return d, nil
}

// parseDate parses "[YEARS-]MONTH-DAY".
func (c *Calendar) parseDate(spec string) error {
	parts := strings.Split(spec, "-")
	switch len(parts) {
	case 2:
	case 3:
		if parts[0] != "*" {
			var years yearSet
			if err := fieldYear.parse(parts[0], years[:]); err != nil {
				return err
			}
			c.years = &years
		}
		parts = parts[1:]
	default:
		return fmt.Errorf("date %q is not [YEARS-]MONTH-DAY", spec)
	}
	var err error
	if c.months, err = fieldMonth.parseWord(parts[0]); err != nil {
		return err
	}
	c.days, err = fieldDay.parseWord(parts[1])
	return err
}

// parseTime parses "[HOURS:]MINUTES[:SECONDS]".
func (c *Calendar) parseTime(spec string) error {
	parts := strings.Split(spec, ":")
	var err error
	switch len(parts) {
	case 1:
		c.hours = fieldHour.all()
		c.minutes, err = fieldMinute.parseWord(parts[0])
		return err
	case 2, 3:
		if c.hours, err = fieldHour.parseWord(parts[0]); err != nil {
			return err
		}
		if c.minutes, err = fieldMinute.parseWord(parts[1]); err != nil {
			return err
		}
		if len(parts) == 3 {
			c.seconds, err = fieldSecond.parseWord(parts[2])
		}
		return err
	default:
		return fmt.Errorf("time %q is not [HOURS:]MINUTES[:SECONDS]", spec)
	}
}

// all returns the set of every value of f, which fits in one word.
func (f calField) all() uint64 {
	return (1<<(f.max+1) - 1) &^ (1<<f.min - 1)
}

// parseWord parses spec as a value list of f, which fits in one word.
func (f calField) parseWord(spec string) (uint64, error) {
	var set [1]uint64
	err := f.parse(spec, set[:])
	return set[0], err
}

// parse parses spec, a comma-separated list of "*", "*/step", "a",
// "a/step", "a..b" and "a..b/step", and sets the bits of the values it
// names in set.
func (f calField) parse(spec string, set []uint64) error {
	for item := range strings.SplitSeq(spec, ",") {
		if item == "" {
			return fmt.Errorf("empty value in %s list %q", f.name, spec)
		}
		body, stepText, hasStep := strings.Cut(item, "/")
		lo, hi := f.min, f.max
		if body != "*" {
			first, last, isRange := strings.Cut(body, "..")
			var err error
			if lo, err = f.number(first); err != nil {
				return err
			}
			switch {
			case isRange:
				if hi, err = f.number(last); err != nil {
					return err
				}
				if lo > hi {
					return fmt.Errorf("%s range %q runs backwards", f.name, body)
				}
			case !hasStep:
				hi = lo
			}
		}
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if !isDigits(stepText) || err != nil || n < 1 || n > f.max {
				return fmt.Errorf("%s step %q is not a number in 1..%d", f.name, stepText, f.max)
			}
			step = n
		}
		for v := lo; v <= hi; v += step {
			set[v/64] |= 1 << (v % 64)
		}
	}
	return nil
}

// number parses one value of f.
func (f calField) number(text string) (int, error) {
	n, err := strconv.Atoi(text)
	if !isDigits(text) || err != nil {
		return 0, fmt.Errorf("%s %q is not a number", f.name, text)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%s %d is out of range %d..%d", f.name, n, f.min, f.max)
	}
	return n, nil
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// someMonthHasADay reports whether any month of c has one of c's days in
// some year (February counting 29 days).
func (c *Calendar) someMonthHasADay() bool {
	for m := 1; m <= 12; m++ {
		if c.months&(1<<m) != 0 && c.days&dayMaskThrough(daysIn(2000, m)) != 0 {
			return true
		}
	}
	return false
}

// String returns the calendar event's source text.
func (c *Calendar) String() string { return c.src }

// MarshalText returns the source text, so a Calendar travels in JSON and
// other text encodings as the string it was parsed from.
func (c *Calendar) MarshalText() ([]byte, error) { return []byte(c.src), nil }

// UnmarshalText parses text with ParseCalendar into c.
func (c *Calendar) UnmarshalText(text []byte) error {
	parsed, err := ParseCalendar(string(text))
	if err != nil {
		return err
	}
	*c = *parsed
	return nil
}
