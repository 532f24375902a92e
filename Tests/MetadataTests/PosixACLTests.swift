import Testing
@testable import Metadata

/// The xattr form of POSIX ACLs and the rules tying an access ACL to the mode.
@Suite struct PosixACLTests {
    typealias E = PosixACL.Entry
    let named = try! PosixACL(entries: [E(tag: PosixACL.userObj, perm: 7), E(tag: PosixACL.user, perm: 6, id: 65534),
                                        E(tag: PosixACL.groupObj, perm: 5), E(tag: PosixACL.group, perm: 3, id: 10),
                                        E(tag: PosixACL.mask, perm: 7), E(tag: PosixACL.other, perm: 4)])

    func verdict(_ entries: [E]) -> FSError? {
        do throws(FSError) { _ = try PosixACL(entries: entries); return nil } catch { return error }
    }

    /// The bytes the kernel sends for `u::rw-,u:nobody:rw-,g::r--,m::rw-,o::r--`.
    @Test func readsAndWritesTheKernelsFormat() throws {
        let bytes: [UInt8] = [2, 0, 0, 0,
                              1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
                              2, 0, 6, 0, 0xfe, 0xff, 0, 0,
                              4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
                              0x10, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
                              0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff]
        let acl = try PosixACL(xattr: bytes)
        #expect(acl.entries.map(\.tag) == [1, 2, 4, 0x10, 0x20])
        #expect(acl.entries[1].id == 65534)
        #expect(acl.xattr == bytes)
        #expect(acl.modeBits == 0o664)
        #expect(!acl.isEquivalentToMode)
        #expect(try PosixACL(xattr: PosixACL(mode: 0o751).xattr).modeBits == 0o751)
        #expect(PosixACL(mode: 0o751).isEquivalentToMode)
    }

    @Test func refusesWhatTheKernelWouldNot() {
        for bad: [UInt8] in [[], [2, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0, 1, 0, 6, 0], [2, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 9]] {
            #expect(throws: FSError.invalid) { _ = try PosixACL(xattr: bad) }
        }
        let u = E(tag: PosixACL.userObj, perm: 6), g = E(tag: PosixACL.groupObj, perm: 4), o = E(tag: PosixACL.other, perm: 4)
        let m = E(tag: PosixACL.mask, perm: 6)
        #expect(verdict([u, g, o]) == nil)
        #expect(verdict([u, g, m, o]) == nil)  // a mask without named entries is allowed
        #expect(verdict([u, o]) == .invalid)  // no owning group
        #expect(verdict([u, u, g, o]) == .invalid)
        #expect(verdict([g, u, o]) == .invalid)  // out of order
        #expect(verdict([u, E(tag: PosixACL.user, perm: 4, id: 3), g, o]) == .invalid)  // named entry, no mask
        #expect(verdict([u, E(tag: PosixACL.user, perm: 4, id: 3), E(tag: PosixACL.user, perm: 4, id: 3), g, m, o]) == .invalid)
        #expect(verdict([u, E(tag: PosixACL.user, perm: 4, id: 5), E(tag: PosixACL.user, perm: 4, id: 3), g, m, o]) == .invalid)
        #expect(verdict([u, g, m, m, o]) == .invalid)
        #expect(verdict([E(tag: PosixACL.userObj, perm: 8), g, o]) == .invalid)
        #expect(verdict([u, g, E(tag: 0x40, perm: 0), o]) == .invalid)
    }

    /// After any chmod the ACL's mode is the new mode, named entries untouched; without a
    /// mask the owning group follows the group bits.
    @Test func chmodSetsTheOwnerMaskAndOther() throws {
        for mode in Int64(0)...0o777 {
            let after = named.chmod(mode)
            #expect(after.modeBits == mode)
            #expect(after.entries.filter { $0.tag == PosixACL.user || $0.tag == PosixACL.group } ==
                    named.entries.filter { $0.tag == PosixACL.user || $0.tag == PosixACL.group })
            #expect(after.entries.first { $0.tag == PosixACL.groupObj }?.perm == 5)
            #expect(PosixACL(mode: 0o644).chmod(mode) == PosixACL(mode: mode))
        }
    }

    /// Inheriting a default ACL narrows each class by the requested mode and never widens
    /// the mode; a default ACL a mode can say leaves no access ACL behind.
    @Test func inheritingADefaultACL() throws {
        let (mode, access) = named.inherited(mode: 0o666)
        #expect(mode == 0o664)
        #expect(access?.entries.map(\.perm) == [6, 6, 5, 3, 6, 4])
        #expect(named.inherited(mode: 0o4755).mode == 0o4754)  // the bits above rwx pass through
        for requested in Int64(0)...0o777 {
            let result = named.inherited(mode: requested)
            #expect(result.mode & ~requested == 0)
            #expect(result.access?.modeBits == result.mode)
            let plain = PosixACL(mode: 0o750).inherited(mode: requested)
            #expect(plain.access == nil)
            #expect(plain.mode == requested & 0o750)
        }
    }
}
