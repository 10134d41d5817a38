import Testing

@testable import RewindServer

/// The transitions of a subscription between the log, the shared window, waiting and closing.
@Suite("Subscription handoff")
struct SubscriptionHandoffTests {
    @Test("a new subscription tries the window first and replays from the log when it does not reach back")
    func startsWithTheWindowOrTheLog() {
        var fresh = SubscriptionHandoff()
        #expect(fresh.phase == .replaying)
        #expect(fresh.beginTurn { true } == (source: .window, fellBehind: false))
        #expect(fresh.phase == .inWindow)

        var behind = SubscriptionHandoff()
        #expect(behind.beginTurn { false } == (source: .log, fellBehind: false))
        #expect(behind.phase == .replaying)
    }

    @Test("a full page reads again from the same place; a short one with nothing newer waits")
    func fullPagesReadAgain() {
        var handoff = SubscriptionHandoff()
        _ = handoff.beginTurn { false }
        #expect(handoff.endTurn(limitReached: false, complete: false, headAhead: false, live: true) == .readAgain)
        #expect(handoff.phase == .replaying)
        _ = handoff.beginTurn { false }
        #expect(handoff.endTurn(limitReached: false, complete: true, headAhead: false, live: true) == .wait)
        #expect(handoff.phase == .caughtUp(fromWindow: false))
    }

    @Test("replay hands over to the window once the window reaches the position")
    func replayJoinsTheWindow() {
        var handoff = SubscriptionHandoff()
        _ = handoff.beginTurn { false }
        #expect(handoff.endTurn(limitReached: false, complete: true, headAhead: true, live: true) == .readAgain)
        #expect(handoff.phase == .replaying, "after a log read the window is tried first again")
        #expect(handoff.beginTurn { true } == (source: .window, fellBehind: false))
        #expect(handoff.phase == .inWindow)
    }

    @Test("the window lacking what the head has sends the next reads to the log until a page is short")
    func behindTheWindowReadsTheLog() {
        var handoff = SubscriptionHandoff()
        _ = handoff.beginTurn { true }
        #expect(handoff.endTurn(limitReached: false, complete: true, headAhead: true, live: true) == .readAgain)
        #expect(handoff.phase == .behindWindow)
        var asked = false
        #expect(
            handoff.beginTurn {
                asked = true; return true
            } == (source: .log, fellBehind: false)
        )
        #expect(!asked, "the window is not consulted while it is known to lack events")
        #expect(handoff.endTurn(limitReached: false, complete: false, headAhead: true, live: true) == .readAgain)
        #expect(handoff.phase == .behindWindow, "a full page keeps reading the log")
        _ = handoff.beginTurn { true }
        #expect(handoff.endTurn(limitReached: false, complete: true, headAhead: false, live: true) == .wait)
        #expect(handoff.phase == .caughtUp(fromWindow: false))
        #expect(handoff.beginTurn { true } == (source: .window, fellBehind: false))
    }

    @Test("a reader that falls out of the window is counted, also after a wait, but not a replay that never joined")
    func fallingBehindIsCounted() {
        var reading = SubscriptionHandoff()
        _ = reading.beginTurn { true }
        #expect(reading.endTurn(limitReached: false, complete: false, headAhead: false, live: true) == .readAgain)
        #expect(reading.beginTurn { false } == (source: .log, fellBehind: true))
        #expect(reading.phase == .replaying)

        var waited = SubscriptionHandoff()
        _ = waited.beginTurn { true }
        #expect(waited.endTurn(limitReached: false, complete: true, headAhead: false, live: true) == .wait)
        #expect(waited.phase == .caughtUp(fromWindow: true))
        #expect(waited.beginTurn { false } == (source: .log, fellBehind: true))

        var replay = SubscriptionHandoff()
        _ = replay.beginTurn { false }
        #expect(replay.endTurn(limitReached: false, complete: true, headAhead: false, live: true) == .wait)
        #expect(replay.beginTurn { false } == (source: .log, fellBehind: false))
    }

    @Test("the limit closes whatever else holds; without live, catching up closes")
    func closing() {
        var limited = SubscriptionHandoff()
        _ = limited.beginTurn { true }
        #expect(limited.endTurn(limitReached: true, complete: false, headAhead: true, live: true) == .close)
        #expect(limited.phase == .closed)

        var once = SubscriptionHandoff()
        _ = once.beginTurn { false }
        #expect(once.endTurn(limitReached: false, complete: true, headAhead: true, live: false) == .readAgain)
        _ = once.beginTurn { false }
        #expect(once.endTurn(limitReached: false, complete: true, headAhead: false, live: false) == .close)
        #expect(once.phase == .closed)
    }
}
