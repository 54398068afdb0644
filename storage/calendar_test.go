package storage

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// utc returns a UTC time from its RFC 3339 text.
func utc(t testing.TB, text string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, text)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// mustCalendar parses spec or fails the test.
func mustCalendar(t testing.TB, spec string) *Calendar {
	t.Helper()
	c, err := ParseCalendar(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCalendarNext(t *testing.T) {
	// 1970-01-01 was a Thursday; 2020-07-31 a Friday, 2020-12-31 a
	// Thursday, 2026-03-02 a Monday. The proxmox-time cases are those of
	// its own test suite, with the expected times written out.
	tests := []struct {
		spec, after string
		want        []string // the next events, each after the one before
	}{
		// Proxmox: a time without a colon is minutes.
		{"0", "1970-01-01T00:00:00Z", []string{"1970-01-01T01:00:00Z", "1970-01-01T02:00:00Z"}},
		{"*", "1970-01-01T00:00:00Z", []string{"1970-01-01T00:01:00Z", "1970-01-01T00:02:00Z"}},
		{"*:0", "1970-01-01T00:00:00Z", []string{"1970-01-01T01:00:00Z"}},
		{"*:*", "1970-01-01T00:00:00Z", []string{"1970-01-01T00:01:00Z"}},
		{"*:*:*", "1970-01-01T00:00:00Z", []string{"1970-01-01T00:00:01Z", "1970-01-01T00:00:02Z"}},
		{"*:3:5", "1970-01-01T00:00:00Z", []string{"1970-01-01T00:03:05Z", "1970-01-01T01:03:05Z"}},
		{"mon *:*", "1970-01-01T00:00:00Z", []string{"1970-01-05T00:00:00Z", "1970-01-05T00:01:00Z"}},
		{"mon 2:*", "1970-01-01T00:00:00Z", []string{"1970-01-05T02:00:00Z"}},
		{"mon 2:50", "1970-01-01T00:00:00Z", []string{"1970-01-05T02:50:00Z", "1970-01-12T02:50:00Z"}},
		{"tue", "1970-01-01T00:00:00Z", []string{"1970-01-06T00:00:00Z"}},
		{"thu", "1970-01-01T00:00:00Z", []string{"1970-01-08T00:00:00Z"}},
		{"fri", "1970-01-01T00:00:00Z", []string{"1970-01-02T00:00:00Z"}},
		{"sun", "1970-01-01T00:00:00Z", []string{"1970-01-04T00:00:00Z"}},
		{"4..10/2:0", "1970-01-01T00:00:00Z", []string{"1970-01-01T04:00:00Z", "1970-01-01T06:00:00Z", "1970-01-01T08:00:00Z", "1970-01-01T10:00:00Z", "1970-01-02T04:00:00Z"}},
		{"4..10/2:0", "1970-01-01T05:00:00Z", []string{"1970-01-01T06:00:00Z"}},
		{"5,10:4,8", "1970-01-01T00:00:00Z", []string{"1970-01-01T05:04:00Z", "1970-01-01T05:08:00Z", "1970-01-01T10:04:00Z"}},
		{"10,5:8,4", "1970-01-01T00:00:00Z", []string{"1970-01-01T05:04:00Z"}},
		{"6,4..10:23,5/5", "1970-01-01T00:00:00Z", []string{"1970-01-01T04:05:00Z", "1970-01-01T04:10:00Z"}},
		{"sat", "2020-07-31T00:00:00Z", []string{"2020-08-01T00:00:00Z"}},
		{"thu", "2020-07-31T00:00:00Z", []string{"2020-08-06T00:00:00Z"}},
		{"fri", "2020-12-31T00:00:00Z", []string{"2021-01-01T00:00:00Z"}},
		{"wed", "2020-12-31T00:00:00Z", []string{"2021-01-06T00:00:00Z"}},
		{"daily", "1970-01-01T00:00:00Z", []string{"1970-01-02T00:00:00Z"}},
		{"daily", "1970-01-01T00:00:01Z", []string{"1970-01-02T00:00:00Z"}},
		{"5/2:0", "1970-01-01T00:00:00Z", []string{"1970-01-01T05:00:00Z", "1970-01-01T07:00:00Z", "1970-01-01T09:00:00Z", "1970-01-01T11:00:00Z"}},
		{"1:0", "1970-01-01T15:00:00Z", []string{"1970-01-02T01:00:00Z", "1970-01-03T01:00:00Z"}},
		{"2020-07-31", "1970-01-01T00:00:00Z", []string{"2020-07-31T00:00:00Z"}},
		{"02-28", "1970-01-01T00:00:00Z", []string{"1970-02-28T00:00:00Z", "1971-02-28T00:00:00Z"}},
		{"02-29", "1970-01-01T00:00:00Z", []string{"1972-02-29T00:00:00Z", "1976-02-29T00:00:00Z"}},
		{"1965/5-01-01", "1969-12-31T23:59:59Z", []string{"1970-01-01T00:00:00Z", "1975-01-01T00:00:00Z"}},
		{"2020-7..9-2/2", "2020-07-31T00:00:00Z", []string{"2020-08-02T00:00:00Z", "2020-08-04T00:00:00Z"}},
		{"2020,2021-12-31", "2020-07-31T00:00:00Z", []string{"2020-12-31T00:00:00Z", "2021-12-31T00:00:00Z"}},
		{"monthly", "1970-01-01T00:00:00Z", []string{"1970-02-01T00:00:00Z", "1970-03-01T00:00:00Z"}},
		{"quarterly", "1970-01-01T00:00:00Z", []string{"1970-04-01T00:00:00Z", "1970-07-01T00:00:00Z"}},
		{"semiannually", "1970-01-01T00:00:00Z", []string{"1970-07-01T00:00:00Z", "1971-01-01T00:00:00Z"}},
		{"yearly", "1970-01-01T00:00:00Z", []string{"1971-01-01T00:00:00Z"}},

		// The schedules of the issue and Proxmox's documentation.
		{"*/15", "2026-03-02T10:07:30Z", []string{"2026-03-02T10:15:00Z", "2026-03-02T10:30:00Z", "2026-03-02T10:45:00Z", "2026-03-02T11:00:00Z"}},
		{"02:00", "2026-03-02T02:00:00Z", []string{"2026-03-03T02:00:00Z"}},
		{"mon..fri 02:00", "2026-03-05T03:00:00Z", []string{"2026-03-06T02:00:00Z", "2026-03-09T02:00:00Z"}},
		{"sat 18:15", "2026-03-02T00:00:00Z", []string{"2026-03-07T18:15:00Z", "2026-03-14T18:15:00Z"}},
		{"*-*-01 00:00", "2026-01-31T12:00:00Z", []string{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"}},
		{"12,14,16,18,20,22:5", "2026-03-02T12:05:00Z", []string{"2026-03-02T14:05:00Z", "2026-03-02T16:05:00Z"}},
		{"12,14,16,18,20,22:5", "2026-03-02T22:05:00Z", []string{"2026-03-03T12:05:00Z"}},
		{"*/2:00", "2026-03-02T01:00:00Z", []string{"2026-03-02T02:00:00Z", "2026-03-02T04:00:00Z"}},
		{"*/2:00", "2026-03-02T22:00:00Z", []string{"2026-03-03T00:00:00Z"}},
		{"8:00/15", "2026-03-02T07:59:00Z", []string{"2026-03-02T08:00:00Z", "2026-03-02T08:15:00Z", "2026-03-02T08:30:00Z", "2026-03-02T08:45:00Z", "2026-03-03T08:00:00Z"}},
		{"mon,tue,wed,thu,fri 22", "2026-03-06T23:30:00Z", []string{"2026-03-09T00:22:00Z"}},
		{"weekly", "2026-03-02T00:00:00Z", []string{"2026-03-09T00:00:00Z"}},
		{"minutely", "2026-03-02T00:00:59Z", []string{"2026-03-02T00:01:00Z"}},
		{"hourly", "2026-03-02T00:59:59Z", []string{"2026-03-02T01:00:00Z"}},
		{"annually", "2026-03-02T00:00:00Z", []string{"2027-01-01T00:00:00Z"}},
		{"semi-annually", "2026-03-02T00:00:00Z", []string{"2026-07-01T00:00:00Z"}},
		{"daily UTC", "2026-03-02T00:00:00Z", []string{"2026-03-03T00:00:00Z"}},

		// Weekdays: full names, any case, ranges across the week's end.
		{"Saturday..MON 03:30", "2026-03-02T04:00:00Z", []string{"2026-03-07T03:30:00Z", "2026-03-08T03:30:00Z", "2026-03-09T03:30:00Z", "2026-03-14T03:30:00Z"}},
		{"mon,wed..fri", "2026-03-02T00:00:00Z", []string{"2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z", "2026-03-09T00:00:00Z"}},

		// Weekday and date together: Friday the 13th.
		{"fri *-*-13", "2026-01-01T00:00:00Z", []string{"2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z", "2026-11-13T00:00:00Z"}},
		// The 31st skips months without one.
		{"*-*-31 12:00", "2026-04-01T00:00:00Z", []string{"2026-05-31T12:00:00Z", "2026-07-31T12:00:00Z", "2026-08-31T12:00:00Z"}},
		// Leap day on a Monday: 2016, then 2044.
		{"mon *-02-29", "2016-03-01T00:00:00Z", []string{"2044-02-29T00:00:00Z"}},
		// Seconds, and carrying into the next year.
		{"*-12-31 23:59:30,45", "2026-12-31T23:59:40Z", []string{"2026-12-31T23:59:45Z", "2027-12-31T23:59:30Z"}},
		// Times before 1970 and fractions of seconds.
		{"*:00", "1969-12-31T23:30:00.5Z", []string{"1970-01-01T00:00:00Z"}},
		{"*:*:*", "2026-03-02T10:00:00.999Z", []string{"2026-03-02T10:00:01Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.after, func(t *testing.T) {
			c := mustCalendar(t, tt.spec)
			at := utc(t, tt.after)
			for _, w := range tt.want {
				got := c.Next(at)
				if want := utc(t, w); !got.Equal(want) || got.Location() != time.UTC {
					t.Fatalf("Next(%s) = %s, want %s", at.Format(time.RFC3339Nano), got, want)
				}
				at = got
			}
		})
	}
}

func TestCalendarBeforeYearZero(t *testing.T) {
	// Go's times reach back past year 0; so do Next and last.
	c := mustCalendar(t, "*-03-01 12:00")
	at := time.Date(-5, 6, 1, 0, 0, 0, 0, time.UTC)
	if got, want := c.Next(at), time.Date(-4, 3, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%s) = %s, want %s", at, got, want)
	}
	if got, want := c.last(at), time.Date(-5, 3, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("last(%s) = %s, want %s", at, got, want)
	}
}

func TestCalendarNextNever(t *testing.T) {
	tests := []struct{ spec, after string }{
		{"2021-02-29", "1970-01-01T00:00:00Z"},
		{"02-30", "1970-01-01T00:00:00Z"},
		{"*-04,06,09,11-31", "2026-01-01T00:00:00Z"},
		{"2020-01-01", "2020-01-01T00:00:00Z"},
		{"2199-12-31 23:59:59", "2199-12-31T23:59:59Z"},
		// Next looks 400 years ahead at most.
		{"2199-01-01", "1700-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		c := mustCalendar(t, tt.spec)
		if got := c.Next(utc(t, tt.after)); !got.IsZero() {
			t.Errorf("%q.Next(%s) = %s, want the zero time", tt.spec, tt.after, got)
		}
	}
}

func TestCalendarLast(t *testing.T) {
	tests := []struct {
		spec, at string
		want     []string // the previous events, at or before at, then each before the one after
	}{
		{"*/15", "2026-03-02T10:15:00Z", []string{"2026-03-02T10:15:00Z", "2026-03-02T10:00:00Z", "2026-03-02T09:45:00Z"}},
		{"*/15", "2026-03-02T10:14:59Z", []string{"2026-03-02T10:00:00Z"}},
		{"mon..fri 02:00", "2026-03-09T01:00:00Z", []string{"2026-03-06T02:00:00Z", "2026-03-05T02:00:00Z"}},
		{"*-*-31 12:00", "2026-07-01T00:00:00Z", []string{"2026-05-31T12:00:00Z", "2026-03-31T12:00:00Z", "2026-01-31T12:00:00Z", "2025-12-31T12:00:00Z"}},
		{"fri *-*-13", "2026-11-12T00:00:00Z", []string{"2026-03-13T00:00:00Z", "2026-02-13T00:00:00Z"}},
		{"mon *-02-29", "2044-02-28T00:00:00Z", []string{"2016-02-29T00:00:00Z"}},
		{"*-12-31 23:59:30,45", "2027-12-31T23:59:40Z", []string{"2027-12-31T23:59:30Z", "2026-12-31T23:59:45Z"}},
		{"2020,2021-12-31", "2026-01-01T00:00:00Z", []string{"2021-12-31T00:00:00Z", "2020-12-31T00:00:00Z"}},
		{"1965/5-01-01", "1970-01-01T00:00:00Z", []string{"1970-01-01T00:00:00Z", "1965-01-01T00:00:00Z"}},
		{"sat..mon 3:30", "2026-03-07T03:29:59Z", []string{"2026-03-02T03:30:00Z", "2026-03-01T03:30:00Z", "2026-02-28T03:30:00Z"}},
		{"12,14,16,18,20,22:5", "2026-03-03T12:04:00Z", []string{"2026-03-02T22:05:00Z", "2026-03-02T20:05:00Z"}},
		{"*:30", "2026-03-01T00:10:00Z", []string{"2026-02-28T23:30:00Z", "2026-02-28T22:30:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.at, func(t *testing.T) {
			c := mustCalendar(t, tt.spec)
			at := utc(t, tt.at)
			for _, w := range tt.want {
				got := c.last(at)
				if want := utc(t, w); !got.Equal(want) {
					t.Fatalf("last(%s) = %s, want %s", at.Format(time.RFC3339), got, want)
				}
				at = got.Add(-time.Second)
			}
		})
	}
	for _, spec := range []string{"2021-02-29", "02-30", "2030-01-01", "1000-01-01"} {
		if got := mustCalendar(t, spec).last(utc(t, "2026-01-01T00:00:00Z")); !got.IsZero() {
			t.Errorf("%q.last = %s, want the zero time", spec, got)
		}
	}
}

// matches is a slow, obvious statement of what a calendar means, for
// checking Next and last against.
func matches(c *Calendar, t time.Time) bool {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	return c.years.has(y) && c.months&(1<<mo) != 0 && c.days&(1<<d) != 0 &&
		c.wdays&(1<<t.Weekday()) != 0 && c.hours&(1<<h) != 0 && c.minutes&(1<<mi) != 0 && c.seconds&(1<<s) != 0
}

func TestCalendarNextAgainstScan(t *testing.T) {
	// For each calendar, scan every minute (every second where seconds
	// vary) over a stretch and check that Next and last land on exactly
	// the matching times.
	tests := []struct{ spec, start string }{
		{"*/15", "2026-02-26T00:00:00Z"},
		{"mon..fri 02:00", "2026-02-26T00:00:00Z"},
		{"sat 18:15", "2026-02-26T00:00:00Z"},
		{"*-*-01 00:00", "2026-01-26T00:00:00Z"},
		{"12,14,16,18,20,22:5", "2026-02-26T00:00:00Z"},
		{"*/2:00", "2026-02-26T00:00:00Z"},
		{"fri *-*-1..7 */6:30", "2026-02-26T00:00:00Z"},
		{"*-*-29..31 23:58..59", "2028-01-20T00:00:00Z"},
		{"sun,wed 0/7:3/17", "2026-02-26T00:00:00Z"},
		{"*-02-28..29 12:00", "2028-02-20T00:00:00Z"},
		{"sat..mon 3..5:*/29", "2026-02-26T00:00:00Z"},
		{"*:*:10/20", "2026-02-26T23:00:00Z"},
		{"2028-02,03-01,28,29 23:59:58..59", "2028-02-28T20:00:00Z"},
	}
	for _, tt := range tests {
		c := mustCalendar(t, tt.spec)
		start := utc(t, tt.start)
		step, span := time.Minute, 70*24*time.Hour
		if c.seconds != 1 {
			step, span = time.Second, 6*time.Hour
		}
		var events []time.Time
		for at := start; at.Before(start.Add(span)); at = at.Add(step) {
			if matches(c, at) {
				events = append(events, at)
			}
		}
		if len(events) < 2 {
			t.Fatalf("%q: the scan found only %d events; widen it", tt.spec, len(events))
		}
		at := start.Add(-time.Second)
		for _, want := range events {
			if got := c.Next(at); !got.Equal(want) {
				t.Fatalf("%q.Next(%s) = %s, want %s", tt.spec, at, got, want)
			}
			if got := c.last(want.Add(step - time.Second)); !got.Equal(want) {
				t.Fatalf("%q.last(%s) = %s, want %s", tt.spec, want.Add(step-time.Second), got, want)
			}
			at = want
		}
	}
}

func TestParseCalendarErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"", `calendar "": empty`},
		{"   ", `calendar "": empty`},
		{"mon..fry", `calendar "mon..fry": unknown weekday "fry"`},
		{"mon,,tue", `calendar "mon,,tue": empty weekday in a weekday list`},
		{"daily 02:00", `calendar "daily 02:00": unknown weekday "daily"`},
		{"25:00", `calendar "25:00": hour 25 is out of range 0..23`},
		{"10:60", `calendar "10:60": minute 60 is out of range 0..59`},
		{"10:00:61", `calendar "10:00:61": second 61 is out of range 0..59`},
		{"1:2:3:4", `calendar "1:2:3:4": time "1:2:3:4" is not [HOURS:]MINUTES[:SECONDS]`},
		{"*/0", `calendar "*/0": minute step "0" is not a number in 1..59`},
		{"*/x", `calendar "*/x": minute step "x" is not a number in 1..59`},
		{"5..3:00", `calendar "5..3:00": hour range "5..3" runs backwards`},
		{"5..x:00", `calendar "5..x:00": hour "x" is not a number`},
		{"5..:00", `calendar "5..:00": hour "" is not a number`},
		{"*/:00", `calendar "*/:00": hour step "" is not a number in 1..23`},
		{"99999999999999999999", `calendar "99999999999999999999": minute "99999999999999999999" is not a number`},
		{"a:00", `calendar "a:00": unknown weekday "a:00"`},
		{"1,:00", `calendar "1,:00": empty value in hour list "1,"`},
		{"+5", `calendar "+5": minute "+5" is not a number`},
		{"*-13-01", `calendar "*-13-01": month 13 is out of range 1..12`},
		{"*-01-00", `calendar "*-01-00": day 0 is out of range 1..31`},
		{"2200-01-01", `calendar "2200-01-01": year 2200 is out of range 0..2199`},
		{"1-2-3-4", `calendar "1-2-3-4": date "1-2-3-4" is not [YEARS-]MONTH-DAY`},
		{"02:00 mon", `calendar "02:00 mon": unexpected "mon" after the time`},
		{"mon 02:00 2026-01-01", `calendar "mon 02:00 2026-01-01": unexpected "2026-01-01" after the time`},
		{"UTC", `calendar "UTC": unknown weekday "UTC"`},
		{strings.Repeat("1", 300), `calendar "` + strings.Repeat("1", 300) + `": longer than 256 characters`},
	}
	for _, tt := range tests {
		c, err := ParseCalendar(tt.spec)
		if err == nil {
			t.Errorf("ParseCalendar(%q) = %v, want an error", tt.spec, c)
			continue
		}
		if got := err.Error(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("ParseCalendar(%q) error = %q, want %q", tt.spec, got, tt.want)
		}
	}
}

func TestCalendarString(t *testing.T) {
	for _, spec := range []string{"*/15", " mon..fri 02:00\t", "daily"} {
		c := mustCalendar(t, spec)
		if got, want := c.String(), strings.TrimSpace(spec); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

func TestCalendarText(t *testing.T) {
	type doc struct {
		Schedule *Calendar `json:"schedule"`
	}
	data, err := json.Marshal(doc{mustCalendar(t, "mon..fri 02:00")})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"schedule":"mon..fri 02:00"}`; string(data) != want {
		t.Fatalf("Marshal = %s, want %s", data, want)
	}
	var back doc
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	at := utc(t, "2026-03-06T03:00:00Z")
	if got, want := back.Schedule.Next(at), utc(t, "2026-03-09T02:00:00Z"); !got.Equal(want) {
		t.Fatalf("decoded Next = %s, want %s", got, want)
	}
	err = json.Unmarshal([]byte(`{"schedule":"mon..fry"}`), &back)
	if err == nil || !strings.Contains(err.Error(), `unknown weekday "fry"`) {
		t.Fatalf("Unmarshal of a bad calendar: error = %v", err)
	}
}
