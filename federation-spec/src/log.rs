//! The directory's append-only Merkle log: RFC 9162 (Certificate Transparency
//! 2.0) tree hashing, inclusion proofs and consistency proofs, over SHA-256.
//!
//! `leaf_hash(d) = SHA-256(0x00 || d)`, `node_hash(l, r) = SHA-256(0x01 || l || r)`,
//! and the tree of `n` leaves splits at the largest power of two below `n`
//! (RFC 9162 §2.1.1). Proofs are lists of 32-byte hashes, bottom-up, exactly
//! as RFC 9162 §2.1.3 and §2.1.4 produce them. The arithmetic is the
//! `ct-merkle` crate's (RFC 6962 hashing, which RFC 9162 keeps unchanged);
//! this module adds what the protocol needs around it: proofs at any older
//! tree size, the trivial cases (empty tree, equal sizes), fixed-size hashes
//! and errors that say what failed. The tests check it against the classic
//! Certificate Transparency test vectors.
//!
//! Not for: what a leaf means (see [`crate::directory`]) or storing leaves.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; 32];

/// The largest tree size the protocol accepts (2^48 leaves; a directory
/// holds a few thousand).
pub const MAX_TREE_SIZE: u64 = 1 << 48;

/// Why a proof or a proof request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes cannot be compared (old size above new size, or above the limit).
    #[error(
        "tree sizes {old} and {new} do not make a consistency question (old must not exceed new)"
    )]
    BadSizes {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// A proof has the wrong number of hashes for the sizes given (truncated or padded).
    #[error("the proof holds {got} hashes where {expected} are needed for these tree sizes")]
    WrongLength {
        /// Hashes needed.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// The proof does not lead to the expected root (tampered proof, leaf or root).
    #[error("the proof does not lead to the expected root hash")]
    Mismatch,
    /// The tree has fewer leaves than the size asked for.
    #[error("the log holds {have} leaves, fewer than the {asked} asked for")]
    NotThatLarge {
        /// Leaves in the log.
        have: u64,
        /// Size asked for.
        asked: u64,
    },
}

/// `SHA-256(0x00 || leaf)`: the hash of a leaf (RFC 9162 §2.1.1).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

fn to_output(h: &Hash) -> ct_merkle::digest::Output<Sha256> {
    (*h).into()
}

fn from_output(o: &ct_merkle::digest::Output<Sha256>) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(o.as_slice());
    out
}

fn concat(proof: &[Hash]) -> Vec<u8> {
    proof.iter().flat_map(|h| h.iter().copied()).collect()
}

fn split(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect()
}

/// Number of hashes in the inclusion proof of leaf `index` in a tree of `size`.
fn inclusion_len(index: u64, size: u64) -> usize {
    ct_merkle::indices_for_inclusion_proof(size, index).len()
}

/// Number of hashes in the consistency proof from `old` to `new` (0 < old < new).
fn consistency_len(old: u64, new: u64) -> usize {
    ct_merkle::indices_for_consistency_proof(old, new - old).len()
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &[u8],
    index: u64,
    size: u64,
    root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    verify_inclusion_of_hash(&leaf_hash(leaf), index, size, root, proof)
}

/// Like [`verify_inclusion`], for a leaf given by its hash.
pub fn verify_inclusion_of_hash(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size > MAX_TREE_SIZE || index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    // RFC 9162 §2.1.3.2, written out so a leaf known only by its hash
    // can be checked (ct-merkle's verifier takes the leaf itself).
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Mismatch);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && bool::from(r.ct_eq(root)) {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root`.
///
/// From the empty tree every tree is consistent (empty proof); at equal sizes
/// the roots must be equal (empty proof).
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size || new_size > MAX_TREE_SIZE {
        return Err(ProofError::BadSizes {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_size == 0 {
            return if bool::from(old_root.ct_eq(&empty_root())) {
                Ok(())
            } else {
                Err(ProofError::Mismatch)
            };
        }
        return if bool::from(old_root.ct_eq(new_root)) {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    let expected = consistency_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let proof = ConsistencyProof::<Sha256>::try_from_bytes(concat(proof))
        .map_err(|_| ProofError::Mismatch)?;
    RootHash::<Sha256>::new(to_output(new_root), new_size)
        .verify_consistency(
            &RootHash::<Sha256>::new(to_output(old_root), old_size),
            &proof,
        )
        .map_err(|_| ProofError::Mismatch)
}

/// An in-memory Merkle log: the directory server's view of its leaves, able
/// to give the root and proofs at the current size or any older one.
#[derive(Clone)]
pub struct MerkleLog {
    tree: MemoryBackedTree<Sha256, Vec<u8>>,
}

impl std::fmt::Debug for MerkleLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MerkleLog({} leaves)", self.len())
    }
}

impl Default for MerkleLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleLog {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            tree: MemoryBackedTree::new(),
        }
    }

    /// A log holding `leaves` in order.
    pub fn from_leaves<I: IntoIterator<Item = Vec<u8>>>(leaves: I) -> Self {
        let mut log = Self::new();
        for l in leaves {
            log.push(l);
        }
        log
    }

    /// Appends a leaf; returns its index.
    pub fn push(&mut self, leaf: Vec<u8>) -> u64 {
        let index = self.len();
        self.tree.push(leaf);
        index
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// True when the log holds no leaf.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: u64) -> Option<&[u8]> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.tree.get(i))
            .map(Vec::as_slice)
    }

    /// The root of the whole log.
    pub fn root(&self) -> Hash {
        if self.is_empty() {
            return empty_root();
        }
        from_output(self.tree.root().as_bytes())
    }

    fn prefix(&self, size: u64) -> Result<Option<MerkleLog>, ProofError> {
        if size > self.len() {
            return Err(ProofError::NotThatLarge {
                have: self.len(),
                asked: size,
            });
        }
        if size == self.len() {
            return Ok(None);
        }
        let n = usize::try_from(size).unwrap_or(usize::MAX);
        Ok(Some(MerkleLog::from_leaves(
            self.tree.items().iter().take(n).cloned(),
        )))
    }

    /// The root of the tree made of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        Ok(match self.prefix(size)? {
            Some(p) => p.root(),
            None => self.root(),
        })
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let prefix = self.prefix(size)?;
        let log = prefix.as_ref().unwrap_or(self);
        let i = usize::try_from(index).map_err(|_| ProofError::IndexOutOfRange { index, size })?;
        let proof: InclusionProof<Sha256> = log.tree.prove_inclusion(i);
        Ok(split(proof.as_bytes()))
    }

    /// The consistency proof from the tree of `old` leaves to that of `new`
    /// leaves (empty when `old` is 0 or equals `new`).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if old > new {
            return Err(ProofError::BadSizes { old, new });
        }
        let prefix = self.prefix(new)?;
        if old == 0 || old == new {
            return Ok(Vec::new());
        }
        let log = prefix.as_ref().unwrap_or(self);
        let additions =
            usize::try_from(new - old).map_err(|_| ProofError::BadSizes { old, new })?;
        Ok(split(log.tree.prove_consistency(additions).as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The classic Certificate Transparency test tree (RFC 6962 reference
    // implementation, also used by transparency-dev/merkle): eight leaves and
    // the roots of every prefix.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn h(s: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    fn tree() -> MerkleLog {
        MerkleLog::from_leaves(LEAVES.iter().map(|l| hex::decode(l).unwrap()))
    }

    #[test]
    fn roots_match_the_ct_vectors() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let t = tree();
        for (i, root) in ROOTS.iter().enumerate() {
            assert_eq!(
                hex::encode(t.root_at(i as u64 + 1).unwrap()),
                *root,
                "size {}",
                i + 1
            );
        }
        assert_eq!(t.root(), h(ROOTS[7]));
    }

    #[test]
    fn inclusion_proofs_match_the_ct_vectors() {
        let t = tree();
        let cases: [(u64, u64, &[&str]); 4] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
        ];
        for (index, size, expected) in cases {
            let proof = t.inclusion_proof(index, size).unwrap();
            let want: Vec<Hash> = expected.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "leaf {index} in {size}");
            let leaf = hex::decode(LEAVES[index as usize]).unwrap();
            verify_inclusion(&leaf, index, size, &h(ROOTS[size as usize - 1]), &proof).unwrap();
        }
    }

    #[test]
    fn consistency_proofs_match_the_ct_vectors() {
        let t = tree();
        let cases: [(u64, u64, &[&str]); 3] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, expected) in cases {
            let proof = t.consistency_proof(old, new).unwrap();
            let want: Vec<Hash> = expected.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "{old} -> {new}");
            verify_consistency(
                old,
                &h(ROOTS[old as usize - 1]),
                new,
                &h(ROOTS[new as usize - 1]),
                &proof,
            )
            .unwrap();
        }
    }

    #[test]
    fn every_proof_of_a_larger_tree_verifies_and_every_change_is_caught() {
        let log = MerkleLog::from_leaves((0..37u32).map(|i| i.to_be_bytes().to_vec()));
        for size in 1..=37u64 {
            let root = log.root_at(size).unwrap();
            for index in 0..size {
                let proof = log.inclusion_proof(index, size).unwrap();
                let leaf = log.leaf(index).unwrap();
                verify_inclusion(leaf, index, size, &root, &proof).unwrap();
                assert!(verify_inclusion(b"other", index, size, &root, &proof).is_err());
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert_eq!(
                        verify_inclusion(leaf, index, size, &root, &bad),
                        Err(ProofError::Mismatch)
                    );
                    assert!(matches!(
                        verify_inclusion(leaf, index, size, &root, &proof[1..]),
                        Err(ProofError::WrongLength { .. })
                    ));
                    let mut long = proof.clone();
                    long.push(*first);
                    assert!(verify_inclusion(leaf, index, size, &root, &long).is_err());
                }
            }
            for old in 0..=size {
                let old_root = log.root_at(old).unwrap();
                let proof = log.consistency_proof(old, size).unwrap();
                verify_consistency(old, &old_root, size, &root, &proof).unwrap();
                if old > 0 && old < size {
                    let mut bad = proof.clone();
                    bad[0][31] ^= 0x80;
                    assert!(verify_consistency(old, &old_root, size, &root, &bad).is_err());
                    let mut forked = old_root;
                    forked[0] ^= 1;
                    assert!(verify_consistency(old, &forked, size, &root, &proof).is_err());
                }
            }
        }
        assert!(matches!(
            verify_consistency(5, &[0; 32], 4, &[0; 32], &[]),
            Err(ProofError::BadSizes { .. })
        ));
        assert!(log.inclusion_proof(3, 3).is_err());
        assert!(log.consistency_proof(1, 99).is_err());
        assert!(verify_inclusion(b"", u64::MAX, u64::MAX, &[0; 32], &[]).is_err());
    }
}
