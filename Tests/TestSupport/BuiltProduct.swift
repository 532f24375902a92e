import Foundation

/// Executables of this package that tests run as real processes.
public enum BuiltProduct {
    /// The path of `name` next to the test bundle (where `swift test` builds it), or in
    /// `.build/debug` of this checkout.
    public static func path(_ name: String, file: String = #filePath) -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path,
            URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/\(name)").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }
}
