/// Sizes as Kubernetes quantities are written in manifests, flags and config files:
/// plain bytes, or a whole number with a binary suffix `Ki`, `Mi`, `Gi`, `Ti`, `Pi`.
public enum ByteSize {
    static let units: [(String, Int64)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50)]

    /// "4Mi" → 4194304, "65536" → 65536; nil for anything else (negative, fractional, overflow).
    public static func parse(_ text: String) -> Int64? {
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let n = Int64(text.dropLast(suffix.count)), n >= 0 else { return nil }
            let (product, overflow) = n.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        guard let n = Int64(text), n >= 0 else { return nil }
        return n
    }
}
