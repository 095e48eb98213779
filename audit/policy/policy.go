package policy

// Policy is a compiled policy file.
type Policy struct {
	Rules     []*Rule
	Ephemeral [2]int // the port range "ephemeral" stands for

	// Warnings are what loads but likely does not mean what it says, in
	// file order.
	Warnings []Warning

	// Allow rules indexed by port: the rules whose port key lists only
	// a few ports are found through byPort, the others are always tried.
	byPort   map[int][]int32
	anyPort  []int32
	requires []*Rule
}

// smallRange is the widest port range still indexed port by port.
const smallRange = 64

func (p *Policy) index() {
	p.byPort = map[int][]int32{}
	for i, r := range p.Rules {
		if r.Action == Require {
			p.requires = append(p.requires, r)
			continue
		}
		if len(r.ports) == 0 || wide(r.ports) {
			p.anyPort = append(p.anyPort, int32(i))
			continue
		}
		for _, pr := range r.ports {
			for port := pr.lo; port <= pr.hi; port++ {
				if l := p.byPort[port]; len(l) == 0 || l[len(l)-1] != int32(i) {
					p.byPort[port] = append(l, int32(i))
				}
			}
		}
	}
}

func wide(rs []portRange) bool {
	n := 0
	for _, r := range rs {
		n += r.hi - r.lo + 1
	}
	return n > smallRange
}

// Allowed returns the first allow rule, in file order, that matches l, or
// nil when none does: l is then a finding.
func (p *Policy) Allowed(l *Listener) *Rule {
	best := int32(-1)
	for _, i := range p.byPort[l.Port] {
		if p.Rules[i].Matches(l) {
			best = i
			break // byPort lists are in file order
		}
	}
	for _, i := range p.anyPort {
		if best >= 0 && i > best {
			break
		}
		if p.Rules[i].Matches(l) {
			best = i
			break
		}
	}
	if best < 0 {
		return nil
	}
	return p.Rules[best]
}

// Requires lists the require rules, in file order. The slice is the
// policy's own: do not change it.
func (p *Policy) Requires() []*Rule { return p.requires }
