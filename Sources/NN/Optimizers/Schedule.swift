import Foundation

/// Learning rate as a function of the (0-based) optimizer step.
public protocol LearningRateSchedule: Sendable {
    func learningRate(atStep step: Int) -> Float
}

public struct ConstantSchedule: LearningRateSchedule {
    public let rate: Float
    public init(_ rate: Float) { self.rate = rate }
    public func learningRate(atStep step: Int) -> Float { rate }
}

/// base * gamma^(number of milestones <= step).
public struct MultiStepSchedule: LearningRateSchedule {
    public let base: Float, milestones: [Int], gamma: Float
    public init(base: Float, milestones: [Int], gamma: Float = 0.1) {
        (self.base, self.milestones, self.gamma) = (base, milestones.sorted(), gamma)
    }
    public func learningRate(atStep step: Int) -> Float {
        base * Float(pow(Double(gamma), Double(milestones.filter { $0 <= step }.count)))
    }
}

/// PyTorch's CosineAnnealingLR (T_max = totalSteps): cosine annealing from base at step 0 to
/// minimum at step totalSteps. As PyTorch's, the cosine continues past totalSteps (back up to base
/// at 2 totalSteps) rather than holding the minimum, so a run should end at step totalSteps.
public struct CosineSchedule: LearningRateSchedule {
    public let base: Float, totalSteps: Int, minimum: Float
    public init(base: Float, totalSteps: Int, minimum: Float = 0) {
        (self.base, self.totalSteps, self.minimum) = (base, totalSteps, minimum)
    }
    public func learningRate(atStep step: Int) -> Float {
        let t = Double(step) / Double(max(totalSteps, 1))
        return minimum + (base - minimum) * Float((1 + cos(Double.pi * t)) / 2)
    }
}

/// PyTorch's OneCycleLR with cosine annealing: from max/div up to max over the first
/// `warmupFraction` of the steps, then down to max/(div*finalDiv).
public struct OneCycleSchedule: LearningRateSchedule {
    public let maximum: Float, totalSteps: Int, warmupFraction: Double, div: Float, finalDiv: Float
    public init(maximum: Float, totalSteps: Int, warmupFraction: Double = 0.3, div: Float = 25, finalDiv: Float = 1e4) {
        (self.maximum, self.totalSteps, self.warmupFraction, self.div, self.finalDiv) =
            (maximum, totalSteps, warmupFraction, div, finalDiv)
    }
    public func learningRate(atStep step: Int) -> Float {
        let initial = maximum / div, final = initial / finalDiv
        let peak = Double(warmupFraction * Double(totalSteps)) - 1
        let end = Double(totalSteps - 1)
        let s = Double(min(step, totalSteps - 1))
        func anneal(_ a: Float, _ b: Float, _ pct: Double) -> Float {
            b + (a - b) / 2 * Float(1 + cos(Double.pi * pct))
        }
        if s <= peak { return anneal(initial, maximum, peak > 0 ? s / peak : 1) }
        return anneal(maximum, final, (s - peak) / max(end - peak, 1))
    }
}
