//! Hysteresis per check target: `fall` consecutive failures to go down, `rise`
//! consecutive successes to come back, with the in-between phases visible.
//! Pure: no clock, no I/O (pingora's `observe_health`, with named phases).

/// Where a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Up,
    /// Up, but failures have started (fewer than `fall`).
    Failing,
    Down,
    /// Down, but successes have started (fewer than `rise`).
    Recovering,
}

impl Phase {
    /// Serving: up or failing (not yet down).
    pub fn is_up(self) -> bool {
        matches!(self, Phase::Up | Phase::Failing)
    }

    pub fn is_wavering(self) -> bool {
        matches!(self, Phase::Failing | Phase::Recovering)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Up => "up",
            Phase::Failing => "failing",
            Phase::Down => "down",
            Phase::Recovering => "recovering",
        }
    }
}

/// The counters of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hysteresis {
    pub phase: Phase,
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
}

impl Hysteresis {
    pub fn new(phase: Phase) -> Self {
        Hysteresis { phase, consecutive_ok: 0, consecutive_fail: 0 }
    }

    /// Records one probe result; returns true when the target flipped between up and down.
    pub fn observe(&mut self, ok: bool, fall: u32, rise: u32) -> bool {
        let was_up = self.phase.is_up();
        if ok {
            self.consecutive_ok = self.consecutive_ok.saturating_add(1);
            self.consecutive_fail = 0;
            self.phase = match self.phase {
                Phase::Up | Phase::Failing => Phase::Up,
                Phase::Down | Phase::Recovering if self.consecutive_ok >= rise => Phase::Up,
                Phase::Down | Phase::Recovering => Phase::Recovering,
            };
        } else {
            self.consecutive_fail = self.consecutive_fail.saturating_add(1);
            self.consecutive_ok = 0;
            self.phase = match self.phase {
                Phase::Down | Phase::Recovering => Phase::Down,
                Phase::Up | Phase::Failing if self.consecutive_fail >= fall => Phase::Down,
                Phase::Up | Phase::Failing => Phase::Failing,
            };
        }
        was_up != self.phase.is_up()
    }

    /// Probes left before the target could flip (for capping TTLs while wavering).
    pub fn checks_until_flip(&self, fall: u32, rise: u32) -> u32 {
        match self.phase {
            Phase::Up => fall,
            Phase::Failing => fall.saturating_sub(self.consecutive_fail).max(1),
            Phase::Down => rise,
            Phase::Recovering => rise.saturating_sub(self.consecutive_ok).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goes_down_after_exactly_fall_failures_and_up_after_rise_successes() {
        let mut h = Hysteresis::new(Phase::Up);
        assert!(!h.observe(false, 3, 2));
        assert_eq!(h.phase, Phase::Failing);
        assert!(!h.observe(false, 3, 2));
        assert!(h.observe(false, 3, 2), "third failure flips");
        assert_eq!(h.phase, Phase::Down);
        assert!(!h.observe(true, 3, 2));
        assert_eq!(h.phase, Phase::Recovering);
        assert!(h.observe(true, 3, 2), "second success flips back");
        assert_eq!(h.phase, Phase::Up);
    }

    #[test]
    fn an_alternating_target_never_flips_with_fall_3_rise_2() {
        for start in [Phase::Up, Phase::Down] {
            let mut h = Hysteresis::new(start);
            for i in 0..100 {
                assert!(!h.observe(i % 2 == 0, 3, 2), "flipped at {i} from {start:?}");
            }
            assert_eq!(h.phase.is_up(), start == Phase::Up);
        }
    }

    #[test]
    fn checks_until_flip_counts_down() {
        let mut h = Hysteresis::new(Phase::Up);
        assert_eq!(h.checks_until_flip(3, 2), 3);
        h.observe(false, 3, 2);
        assert_eq!(h.checks_until_flip(3, 2), 2);
    }
}
