package site

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Leave notices. memberlist v0.5.4 tells its event delegate that a member
// is gone but not whether it left or died (Node.State is never set). So a
// server that leaves first sends a notice naming itself and its instance to
// every alive member and gossips it; every server records it and passes it
// on, and push/pull exchanges carry the notices too. A member gone with a notice for its instance is "left", in
// whichever order the notice and memberlist's leave message arrive; a
// notice of an earlier instance never applies to a restarted server.

// notice is a leave notice, gossiped as a memberlist user message.
type notice struct {
	Name     string `json:"n"`
	Instance string `json:"i"`
	// Forced marks a notice another server gave for a dead member (Forget).
	// It never applies to a member seen alive with that instance: a server
	// that sees the member alive drops it and does not pass it on, so a
	// site forgotten while it was only cut off counts again once it is
	// back, and is down, not left, if it dies later.
	Forced bool `json:"f,omitempty"`
}

// noticeBroadcast is one notice in memberlist's broadcast queue.
type noticeBroadcast struct {
	msg  []byte
	name string
	sent chan struct{} // closed when memberlist is done sending it, or nil
}

func (b *noticeBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*noticeBroadcast)
	return ok && o.name == b.name
}

func (b *noticeBroadcast) Message() []byte { return b.msg }

func (b *noticeBroadcast) Finished() {
	if b.sent != nil {
		close(b.sent)
	}
}

// queueNotice queues n for gossip and returns a channel closed when it has
// been sent as many times as memberlist sends its own messages.
func (p *Pool) queueNotice(n notice) <-chan struct{} {
	msg, err := json.Marshal(n)
	if err != nil {
		panic(err) // two strings always encode
	}
	b := &noticeBroadcast{msg: msg, name: n.Name, sent: make(chan struct{})}
	p.notices.QueueBroadcast(b)
	return b.sent
}

// sendLeaveNotice sends this server's leave notice to every alive member,
// gossips it and waits at most timeout for the gossip to go out.
func (p *Pool) sendLeaveNotice(timeout time.Duration) {
	n := notice{Name: p.name, Instance: p.instance}
	sent := p.queueNotice(n)
	if p.sendNotice(n) == 0 {
		return
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-sent:
	case <-timer.C:
		p.log.Warn("site: leave notice not fully gossiped: some servers may see this one dead rather than left")
	}
}

// sendNotice sends n straight to every alive member but this server, on
// top of the gossip, and returns how many it sent it to.
func (p *Pool) sendNotice(n notice) int {
	msg, err := json.Marshal(n)
	if err != nil {
		panic(err) // strings and a bool always encode
	}
	var to []memberlist.Address
	p.mu.Lock()
	for _, m := range p.members {
		if m.State == StateAlive && m.Name != p.name {
			to = append(to, memberlist.Address{Addr: m.Addr, Name: m.Name})
		}
	}
	p.mu.Unlock()
	for _, a := range to {
		if err := p.ml.SendToAddress(a, msg); err != nil {
			p.log.Debug("site: leave notice not sent", "to", a.Name, "notice", n.Name, "err", err)
		}
	}
	return len(to)
}

// recordNotice records a leave notice and reports whether it was new. A
// member already gone with that instance becomes left. A forced notice
// does not replace a member's own notice for the same instance, and is
// refused for a member alive with that instance.
func (p *Pool) recordNotice(n notice) bool {
	site, _, ok := splitName(n.Name)
	if !ok || !instanceRe.MatchString(n.Instance) || n.Name == p.name {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.left[n.Name]; ok && old.Instance == n.Instance && (n.Forced || !old.Forced) {
		return false
	}
	m, known := p.members[n.Name]
	if n.Forced && known && m.State == StateAlive && p.instances[n.Name] == n.Instance {
		return false
	}
	p.left[n.Name] = n
	if known && m.State == StateDead && p.instances[n.Name] == n.Instance {
		m.State = StateLeft
		m.Since = time.Now()
		p.members[n.Name] = m
		p.log.Info("site: member left", "member", n.Name, "site", site)
	}
	return true
}

// NotifyMsg receives a gossiped leave notice, records it and passes it on
// if it is new.
func (d delegate) NotifyMsg(b []byte) {
	var n notice
	if err := json.Unmarshal(b, &n); err != nil {
		d.p.log.Debug("site: unreadable gossip message", "err", err)
		return
	}
	if d.p.recordNotice(n) {
		d.p.notices.QueueBroadcast(&noticeBroadcast{msg: append([]byte(nil), b...), name: n.Name})
		signal(d.p.kick)
	}
}

// GetBroadcasts hands memberlist the leave notices to piggyback on gossip.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.p.notices.GetBroadcasts(overhead, limit)
}

// LocalState sends every leave notice known in a push/pull exchange.
func (d delegate) LocalState(join bool) []byte {
	p := d.p
	p.mu.Lock()
	ns := make([]notice, 0, len(p.left))
	for _, n := range p.left {
		ns = append(ns, n)
	}
	p.mu.Unlock()
	b, err := json.Marshal(ns)
	if err != nil {
		panic(err) // strings always encode
	}
	return b
}

// MergeRemoteState records the leave notices of a push/pull exchange.
func (d delegate) MergeRemoteState(buf []byte, join bool) {
	var ns []notice
	if err := json.Unmarshal(buf, &ns); err != nil {
		d.p.log.Debug("site: unreadable push/pull state", "err", err)
		return
	}
	changed := false
	for _, n := range ns {
		changed = d.p.recordNotice(n) || changed
	}
	if changed {
		signal(d.p.kick)
	}
}

// Forget declares site, of which this server sees no server alive, gone
// for good: each of its dead servers is given a forced leave notice (see
// notice), sent to every alive server and gossiped, so that every server
// sees the site left, as if its servers had left. A site that left does
// not count in the quorum of the others, so that they can vote each other
// down again, and is neither voted down nor contacted. It returns
// ErrOwnSite for this server's own site, ErrUnknownSite for a site the
// pool does not know, and a *SiteAliveError when this server sees a server
// of the site alive. Forgetting a site that left already changes nothing.
func (p *Pool) Forget(site string) error {
	if site == p.cfg.Site {
		return ErrOwnSite
	}
	var ns []notice
	var alive, unknown []string
	known := false
	p.mu.Lock()
	for name, m := range p.members {
		if m.Site != site {
			continue
		}
		known = true
		switch {
		case m.State == StateAlive:
			alive = append(alive, name)
		case m.State != StateDead:
		case p.instances[name] == "":
			unknown = append(unknown, name)
		default:
			ns = append(ns, notice{Name: name, Instance: p.instances[name], Forced: true})
		}
	}
	p.mu.Unlock()
	switch {
	case !known:
		return ErrUnknownSite
	case len(alive) > 0:
		slices.Sort(alive)
		return &SiteAliveError{Site: site, Alive: alive}
	case len(unknown) > 0:
		slices.Sort(unknown)
		return fmt.Errorf("site: cannot forget %s: the pool never told this server who %s were", site, strings.Join(unknown, ", "))
	}
	for _, n := range ns {
		if p.recordNotice(n) {
			p.queueNotice(n)
			p.sendNotice(n)
		}
	}
	if len(ns) > 0 {
		p.log.Warn("site: site forgotten: its servers count as left", "site", site, "servers", len(ns))
	}
	p.evaluate(time.Now())
	return nil
}
