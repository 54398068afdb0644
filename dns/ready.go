package dns

// Ready implements the ready plugin's Readiness interface: the plugin is
// ready once it has built answers from its source, which happens before the
// server starts listening, and, for a GatedSource, once those answers are
// current. Until then every query is answered SERVFAIL.
func (m *Moxxie) Ready() bool { return m.ready.Load() }
