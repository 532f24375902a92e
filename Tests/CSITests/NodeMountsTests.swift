@testable import CSI
import FileSystem
import Foundation
import Testing

@Suite struct NodeMountsTests {
    /// /proc files say their size is 0; a reader that trusts sizes stops after one page and
    /// a node with many mounts loses some. /proc/self/maps of this test process is larger
    /// than a page.
    @Test func procFilesAreReadToTheirEnd() throws {
        let expected = String(decoding: FileHandle(forReadingAtPath: "/proc/self/maps")!.readDataToEndOfFile(), as: UTF8.self)
        #expect(expected.utf8.count > 4096)
        let read = MountTable.readProcFile("/proc/self/maps")
        // The maps may change a little between the two reads; the line count barely does.
        let a = expected.split(separator: "\n").count, b = read.split(separator: "\n").count
        #expect(abs(a - b) <= 4, "\(a) vs \(b) lines")
        #expect(NodeMounts.isMountPoint("/proc"))
    }

    @Test func mountinfoEscapesAreDecoded() {
        #expect(MountTable.unescape("/a\\040b\\011c\\134d") == "/a b\tc\\d")
        #expect(MountTable.unescape("/plain") == "/plain")
    }
}
