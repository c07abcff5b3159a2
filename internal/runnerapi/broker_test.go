package runnerapi

import "testing"

func TestBrokerWakesOnlyMatchingRunners(t *testing.T) {
	b := NewBroker()
	linux := func(c Candidate) bool { return len(c.Tags) == 1 && c.Tags[0] == "linux" }
	any := func(c Candidate) bool { return len(c.Tags) == 0 || c.Tags[0] != "linux" }
	chLinux, cancelLinux := b.Subscribe(1, linux)
	defer cancelLinux()
	var others []<-chan struct{}
	for i := 0; i < 10; i++ {
		ch, cancel := b.Subscribe(int64(10+i), any)
		defer cancel()
		others = append(others, ch)
	}
	v1, v2 := b.Version(1), b.Version(10)
	if n := b.Notify([]Candidate{{ProjectID: 1, Tags: []string{"windows"}}}); n != wakePerJob {
		t.Fatalf("woke %d", n)
	}
	select {
	case <-chLinux:
		t.Fatal("a runner that cannot take the job was woken")
	default:
	}
	if b.Version(1) != v1 || b.Version(10) == v2 {
		t.Fatal("versions: only matching runners move")
	}
	woken := 0
	for _, ch := range others {
		select {
		case <-ch:
			woken++
		default:
		}
	}
	if woken != wakePerJob {
		t.Fatalf("%d of the matching waiters woke, want %d", woken, wakePerJob)
	}
	b.Notify([]Candidate{{ProjectID: 1, Tags: []string{"linux"}}})
	select {
	case <-chLinux:
	default:
		t.Fatal("the matching runner was not woken")
	}
	if b.Waiting() != 11 {
		t.Fatalf("waiting %d", b.Waiting())
	}
}

// After lost wake-ups every held poll is told to look again, whatever it
// could take, and every runner's version moves.
func TestBrokerWakeAll(t *testing.T) {
	b := NewBroker()
	never := func(Candidate) bool { return false }
	var chans []<-chan struct{}
	for i := 0; i < 5; i++ {
		ch, cancel := b.Subscribe(int64(i), never)
		defer cancel()
		chans = append(chans, ch)
	}
	before := b.Version(3)
	if n := b.WakeAll(); n != 5 {
		t.Fatalf("woke %d of 5", n)
	}
	for i, ch := range chans {
		select {
		case <-ch:
		default:
			t.Fatalf("poll %d not woken", i)
		}
	}
	if b.Version(3) == before {
		t.Fatal("version did not move")
	}
}

// One pending job wakes one waiter; if that waiter goes away without
// taking the wake-up (its runner hung up), the wake-up passes to another
// waiter that can take the job rather than being lost.
func TestBrokerPassesOnAnUntakenWakeUp(t *testing.T) {
	b := NewBroker()
	all := func(Candidate) bool { return true }
	none := func(Candidate) bool { return false }
	chA, cancelA := b.Subscribe(1, all)
	chB, cancelB := b.Subscribe(2, all)
	chN, cancelN := b.Subscribe(3, none)
	defer cancelN()
	if n := b.Notify([]Candidate{{ProjectID: 7}}); n != 1 {
		t.Fatalf("woke %d, want 1", n)
	}
	woken, other, cancelWoken, cancelOther := chA, chB, cancelA, cancelB
	if len(chB) == 1 {
		woken, other, cancelWoken, cancelOther = chB, chA, cancelB, cancelA
	}
	defer cancelOther()
	if len(woken) != 1 || len(other) != 0 {
		t.Fatalf("tokens: woken %d, other %d", len(woken), len(other))
	}
	cancelWoken() // leaves without reading its token
	select {
	case <-other:
	default:
		t.Fatal("the wake-up was lost with the waiter that left")
	}
	if len(chN) != 0 {
		t.Fatal("passed on to a waiter that cannot take the job")
	}
	// A waiter that took its wake-up passes nothing on when it leaves.
	chC, cancelC := b.Subscribe(4, all)
	cancelOther()
	if len(chC) != 0 {
		t.Fatal("a consumed wake-up was passed on")
	}
	cancelC()
}
