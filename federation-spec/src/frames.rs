//! Length-prefixed frames (SPEC.md §15.6): several receipts or envelopes in
//! one HTTP body. Each frame is a 4-byte big-endian length followed by that
//! many bytes; the body is nothing but frames.

/// Media type of a body of frames.
pub const FRAMES_TYPE: &str = "application/gsp-frames";

/// Why a body of frames was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame's length field or bytes run past the end of the body.
    #[error("frame {index} at byte {offset}: {needed} bytes needed, {left} left")]
    Truncated {
        /// The frame's position, from 0.
        index: usize,
        /// Where the frame starts in the body.
        offset: usize,
        /// Bytes its length field (or the field itself) needs.
        needed: usize,
        /// Bytes left in the body.
        left: usize,
    },
    /// More frames than the caller accepts.
    #[error("more than {max} frames")]
    TooMany {
        /// The caller's limit.
        max: usize,
    },
    /// A frame of zero bytes (never meaningful).
    #[error("frame {index} at byte {offset} is empty")]
    Empty {
        /// The frame's position, from 0.
        index: usize,
        /// Where the frame starts in the body.
        offset: usize,
    },
}

/// The body of `items`, each as one frame.
pub fn encode<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let len = items.iter().map(|i| 4 + i.as_ref().len()).sum();
    let mut out = Vec::with_capacity(len);
    for item in items {
        let item = item.as_ref();
        // Bodies are bounded far below 4 GiB (§12); a longer item would not
        // be sent in one frame by any caller.
        let n = u32::try_from(item.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// The frames of `body`, at most `max` of them, borrowed from it.
pub fn decode(body: &[u8], max: usize) -> Result<Vec<&[u8]>, FrameError> {
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        let index = frames.len();
        if index == max {
            return Err(FrameError::TooMany { max });
        }
        let left = body.len() - offset;
        let Some(field) = body.get(offset..offset + 4) else {
            return Err(FrameError::Truncated {
                index,
                offset,
                needed: 4,
                left,
            });
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(field);
        let needed = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if needed == 0 {
            return Err(FrameError::Empty { index, offset });
        }
        let start = offset + 4;
        let Some(frame) = start
            .checked_add(needed)
            .and_then(|end| body.get(start..end))
        else {
            return Err(FrameError::Truncated {
                index,
                offset,
                needed,
                left: left - 4,
            });
        };
        frames.push(frame);
        offset = start + needed;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_come_back_as_they_went() {
        let items: Vec<Vec<u8>> = vec![b"receipt".to_vec(), vec![7u8; 70_000], b"x".to_vec()];
        let body = encode(&items);
        assert_eq!(body.len(), 4 * 3 + 7 + 70_000 + 1);
        let back = decode(&body, 3).unwrap();
        assert_eq!(back, items.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert!(decode(&[], 3).unwrap().is_empty());
    }

    #[test]
    fn hostile_bodies_are_refused_with_where() {
        let body = encode(&[b"abc".as_slice(), b"defg".as_slice()]);
        assert_eq!(decode(&body, 1), Err(FrameError::TooMany { max: 1 }));
        assert_eq!(
            decode(&body[..body.len() - 1], 2),
            Err(FrameError::Truncated {
                index: 1,
                offset: 7,
                needed: 4,
                left: 3
            })
        );
        assert_eq!(
            decode(&body[..9], 2),
            Err(FrameError::Truncated {
                index: 1,
                offset: 7,
                needed: 4,
                left: 2
            })
        );
        assert_eq!(
            decode(&[0, 0, 0, 0], 2),
            Err(FrameError::Empty {
                index: 0,
                offset: 0
            })
        );
        // A length near 4 GiB neither overflows nor allocates.
        assert!(matches!(
            decode(&[0xff, 0xff, 0xff, 0xff, 1], 2),
            Err(FrameError::Truncated { index: 0, .. })
        ));
    }
}
