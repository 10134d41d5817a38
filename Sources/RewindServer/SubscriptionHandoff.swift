/// Where a subscription reads its next events from, and what it does after each turn: the handoff from replay to
/// live as a state machine, so that every path between the log, the shared window and waiting is one of a few
/// named transitions instead of a combination of flags.
///
/// A turn reads once (from the window when it holds the position and nothing says the window lacks events, else
/// from the log), writes what it read, then ends with one of: read again, wait for the next commit, or close.
struct SubscriptionHandoff: Equatable {
    enum Phase: Equatable {
        /// Reading the log in pages: the window does not reach back to the position, or the last turn read the log.
        /// The next turn tries the window first.
        case replaying
        /// The last turn was served by the shared window of recent events.
        case inWindow
        /// Caught up with the window, but the head is further: the window lacks events another process committed,
        /// or that committed while the turn ran. The next turns read the log until a page comes back short.
        case behindWindow
        /// Caught up with the head; waiting for a commit. `fromWindow` says whether the last read came from the
        /// window, so falling out of it after the wait counts as a slow reader's fallback.
        case caughtUp(fromWindow: Bool)
        /// The subscription has ended (limit reached, or caught up without `live`).
        case closed
    }

    enum Source: Equatable {
        case window
        case log
    }

    /// What the subscription does once a turn's events are written.
    enum Next: Equatable {
        case readAgain
        case wait
        case close
    }

    private(set) var phase: Phase = .replaying
    /// The source of the turn in progress.
    private(set) var source: Source = .log

    /// Chooses the turn's source. `windowHolds` says whether the window covers the position (it is asked only
    /// when the phase allows the window). Returns the source and whether this is a reader falling out of the
    /// window, for the slow-reader metric.
    mutating func beginTurn(windowHolds: () -> Bool) -> (source: Source, fellBehind: Bool) {
        precondition(phase != .closed, "a closed subscription reads nothing")
        let wasInWindow: Bool
        switch phase {
        case .behindWindow:
            source = .log
            return (.log, false)
        case .inWindow, .caughtUp(fromWindow: true):
            wasInWindow = true
        case .replaying, .caughtUp(fromWindow: false), .closed:
            wasInWindow = false
        }
        if windowHolds() {
            source = .window
            phase = .inWindow
            return (.window, false)
        }
        source = .log
        phase = .replaying
        return (.log, wasInWindow)
    }

    /// Ends the turn. `limitReached`: the subscription's `limit` is met. `complete`: the read returned less than it
    /// asked for, so nothing more was there when it read. `headAhead`: the log's head is past the position.
    mutating func endTurn(limitReached: Bool, complete: Bool, headAhead: Bool, live: Bool) -> Next {
        if limitReached {
            phase = .closed
            return .close
        }
        if !complete { return .readAgain }
        if headAhead {
            // After a window read the window lacks what the head has: read the log. After a log read the window may
            // hold it by now: try it first.
            phase = source == .window ? .behindWindow : .replaying
            return .readAgain
        }
        guard live else {
            phase = .closed
            return .close
        }
        phase = .caughtUp(fromWindow: source == .window)
        return .wait
    }
}
