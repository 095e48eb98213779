package state

// A host's listeners: adding, replacing, closing (O(1) per member of a
// service), removing and sweeping them.

// add adds ev's listener, unless the host already has max (the table's
// MaxListenersPerHost): then it is counted in overCap.
func (h *Host) add(ev *Event, ch []Change, max int) []Change {
	k := keyOf(ev)
	if l, ok := h.Listeners[k]; ok {
		l.confirmed = ev.Seq
		return ch
	}
	if len(h.Listeners) >= max {
		h.overCap++
		return ch
	}
	l := &Listener{
		Key: k, Host: ev.Host, HostID: ev.HostID, BootID: ev.BootID, Seq: ev.Seq, Since: ev.Time,
		PID: ev.PID, UID: ev.UID, Comm: ev.Comm, Exe: ev.Exe, ContainerID: ev.ContainerID, Runtime: ev.Runtime,
		Protocol: ev.Protocol, Family: ev.Family, Addr: ev.Addr, Port: ev.Port, Exposure: ev.Exposure,
		HostNetNS: ev.HostNetNS, CgroupPath: ev.CgroupPath, CgroupOwnerUID: ev.CgroupOwnerUID, Workload: ev.Workload,
		confirmed: ev.Seq,
	}
	h.Put(l)
	return append(ch, Change{Op: Added, L: l})
}

// Put adds a listener as it is, as a rebuild from the state topic does.
func (h *Host) Put(l *Listener) {
	if l.confirmed == 0 {
		l.confirmed = l.Seq
	}
	if old, ok := h.Listeners[l.Key]; ok {
		h.drop(old)
	}
	if l.Workload.Source == SourcePending {
		h.pendingWorkloads++
	}
	h.Listeners[l.Key] = l
	sk := l.Service()
	l.member = len(h.Services[sk])
	h.Services[sk] = append(h.Services[sk], l)
}

// drop takes l out of its service.
func (h *Host) drop(l *Listener) {
	if l.Workload.Source == SourcePending {
		h.pendingWorkloads--
	}
	sk := l.Service()
	m := h.Services[sk]
	if i := l.member; i < len(m) && m[i] == l {
		last := m[len(m)-1]
		m[i], last.member = last, i
		m[len(m)-1] = nil
		m = m[:len(m)-1]
	}
	if len(m) == 0 {
		delete(h.Services, sk)
	} else {
		h.Services[sk] = m
	}
}

func (h *Host) remove(k Key, ch []Change) []Change {
	l, ok := h.Listeners[k]
	if !ok {
		return ch
	}
	delete(h.Listeners, k)
	h.drop(l)
	return append(ch, Change{Op: Removed, L: l})
}

// sweep removes what the snapshot that just ended did not show and no
// event since its start confirmed.
func (h *Host) sweep(ch []Change) []Change {
	var gone []Key
	for k, l := range h.Listeners {
		if l.confirmed < h.SnapshotStart {
			gone = append(gone, k)
		}
	}
	start := len(ch)
	for _, k := range gone {
		ch = h.remove(k, ch)
	}
	sortChanges(ch[start:])
	return ch
}

// Members returns the members of a service.
func (h *Host) Members(sk ServiceKey) []*Listener { return h.Services[sk] }
