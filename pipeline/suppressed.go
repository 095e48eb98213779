package pipeline

import (
	"slices"
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
)

// suppressedInterval is how often the agent reports what users' budgets
// dropped.
const suppressedInterval = 10 * time.Second

// reportSuppressed sends a suppressed record for each user whose budget
// dropped records since the last report: who flooded, and how much of it
// is missing. The records are numbered like any other.
func (a *Agent) reportSuppressed(out chan<- record.Record) {
	now, err := a.probe.Suppressed()
	if err != nil {
		a.log.Warn("user budgets unreadable", "component", "agent", "error", err)
		return
	}
	var uids []uint32
	for uid, n := range now {
		if n.Total() > a.suppressedReported[uid].Total() {
			uids = append(uids, uid)
		}
	}
	if len(uids) == 0 {
		return
	}
	slices.Sort(uids)
	first, err := a.probe.ReserveSeq(uint64(len(uids)))
	if err != nil {
		a.log.Warn("suppressed records not numbered", "component", "agent", "error", err)
		return
	}
	at := time.Now()
	for i, uid := range uids {
		was := a.suppressedReported[uid]
		n := now[uid].Total() - was.Total()
		out <- record.Record{Event: schemas.BindEvent{Kind: schemas.KindSuppressed, Seq: int64(first) + int64(i),
			Time: at, UID: int64(uid), Suppressed: int64(n)}}
		a.suppressedReported[uid] = now[uid]
		a.log.Warn("a user's records went over its budget", "component", "agent", "uid", uid, "suppressed", n,
			"binds", now[uid].Binds-was.Binds, "listens_and_closes", now[uid].Listeners-was.Listeners)
	}
}
