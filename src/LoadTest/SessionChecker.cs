namespace Baton.LoadTest;

/// <summary>What a response says about a virtual user's session, compared with what that user wrote.</summary>
internal enum Verdict
{
    /// <summary>The session is exactly what the user wrote.</summary>
    Ok,

    /// <summary>The session is gone: the server answered from an empty (new) session.</summary>
    Lost,

    /// <summary>The session went back in time: an older state of the user's own writes.</summary>
    Stale,

    /// <summary>The session holds something the user never wrote (corrupted or another user's data).</summary>
    Mismatch,
}

/// <summary>
/// The checker: pure functions from what a virtual user expects (its cart, its blob) and what the server
/// answered to a <see cref="Verdict"/>. A cart is a map of SKU to quantity; users only ever add.
/// </summary>
internal static class SessionChecker
{
    /// <summary>Checks a cart read: it must equal what the user wrote.</summary>
    public static Verdict CheckCart(IReadOnlyDictionary<string, int> expected, IReadOnlyDictionary<string, int> actual)
    {
        if (SameCart(expected, actual))
        {
            return Verdict.Ok;
        }

        if (actual.Count == 0)
        {
            return Verdict.Lost;
        }

        return IsEarlierState(actual, expected) ? Verdict.Stale : Verdict.Mismatch;
    }

    /// <summary>
    /// Checks the answer to adding one unit of <paramref name="sku"/>: the cart must be the expected one plus that unit.
    /// A cart holding nothing but this unit, when the user had more, is a session that started over; an empty
    /// one, a session gone.
    /// </summary>
    public static Verdict CheckAdd(IReadOnlyDictionary<string, int> expectedBefore, string sku, IReadOnlyDictionary<string, int> actual)
    {
        var expectedAfter = Add(expectedBefore, sku);
        if (SameCart(expectedAfter, actual))
        {
            return Verdict.Ok;
        }

        if (actual.Count == 0 || (actual.Count == 1 && actual.TryGetValue(sku, out var qty) && qty == 1))
        {
            return Verdict.Lost;
        }

        return IsEarlierState(actual, expectedAfter) ? Verdict.Stale : Verdict.Mismatch;
    }

    /// <summary>Checks a blob read by its size and SHA-256 (hex).</summary>
    public static Verdict CheckBlob(string? expectedSha256, int expectedBytes, string actualSha256, int actualBytes)
    {
        if (expectedSha256 is null || (actualBytes == expectedBytes && string.Equals(expectedSha256, actualSha256, StringComparison.OrdinalIgnoreCase)))
        {
            return Verdict.Ok;
        }

        return actualBytes == 0 ? Verdict.Lost : Verdict.Mismatch;
    }

    /// <summary>
    /// After a write whose outcome is unknown (an error or no answer), a cart that holds some of those
    /// unconfirmed units on top of the expected cart is fine: between the two, item by item.
    /// </summary>
    public static bool WithinUnconfirmed(IReadOnlyDictionary<string, int> expected, IReadOnlyDictionary<string, int> unconfirmed, IReadOnlyDictionary<string, int> actual)
    {
        foreach (var (sku, qty) in expected)
        {
            if (!actual.TryGetValue(sku, out var have) || have < qty)
            {
                return false;
            }
        }

        foreach (var (sku, have) in actual)
        {
            var max = expected.GetValueOrDefault(sku) + unconfirmed.GetValueOrDefault(sku);
            if (have > max)
            {
                return false;
            }
        }

        return true;
    }

    public static Dictionary<string, int> Add(IReadOnlyDictionary<string, int> cart, string sku)
    {
        var next = new Dictionary<string, int>(cart, StringComparer.Ordinal);
        next[sku] = next.GetValueOrDefault(sku) + 1;
        return next;
    }

    private static bool SameCart(IReadOnlyDictionary<string, int> a, IReadOnlyDictionary<string, int> b)
        => a.Count == b.Count && a.All(pair => b.TryGetValue(pair.Key, out var qty) && qty == pair.Value);

    // Every SKU the server has, the user wrote, with no more units than the user has written since.
    private static bool IsEarlierState(IReadOnlyDictionary<string, int> actual, IReadOnlyDictionary<string, int> expected)
        => actual.All(pair => expected.TryGetValue(pair.Key, out var qty) && pair.Value <= qty);
}
