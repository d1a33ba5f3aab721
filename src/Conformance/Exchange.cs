using System.Net.Http.Headers;
using System.Text;

namespace Baton.Conformance;

/// <summary>
/// One request to the backend and what came back, read in full (up to a cap) so rules can look at it at
/// leisure. A backend that does not answer, or answers garbage, gives an exchange with <see cref="Error"/>
/// set instead of an exception.
/// </summary>
internal sealed class Exchange
{
    private readonly Dictionary<string, List<string>> _headers = new(StringComparer.OrdinalIgnoreCase);

    public Exchange(string description) => Description = description;

    /// <summary>What the request was, for messages (<c>POST /counter with a grant</c>).</summary>
    public string Description { get; }

    /// <summary>True when the request carried <c>Baton-Deltas: 1</c>: only then may its checkpoint be a delta.</summary>
    public bool OfferedDeltas { get; init; }

    /// <summary>The status code; 0 when no answer came.</summary>
    public int Status { get; set; }

    /// <summary>Why no complete answer came (timeout, refused connection, a body shorter than its Content-Length).</summary>
    public string? Error { get; set; }

    public byte[] Body { get; set; } = [];

    public bool Answered => Error is null;

    public void AddHeaders(HttpHeaders headers)
    {
        foreach (var (name, values) in headers)
        {
            if (!_headers.TryGetValue(name, out var list))
            {
                list = [];
                _headers[name] = list;
            }

            list.AddRange(values);
        }
    }

    /// <summary>Every value of a header (case-insensitive name); empty when absent.</summary>
    public IReadOnlyList<string> All(string name) => _headers.TryGetValue(name, out var values) ? values : [];

    /// <summary>The header's single value; null when absent or repeated.</summary>
    public string? Single(string name) => All(name) is [var one] ? one : null;

    public bool Has(string name) => All(name).Count > 0;

    /// <summary>The body as text, shortened for messages.</summary>
    public string BodyText(int max = 120)
    {
        var text = Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, max * 4));
        text = new string([.. text.Select(c => char.IsControl(c) ? ' ' : c)]).Trim();
        return text.Length > max ? text[..max] + "…" : text;
    }

    /// <summary>"answered 200" or "not answered (timeout)": how the exchange ended, for messages.</summary>
    public string Outcome => Answered ? "answered " + Status.ToString(System.Globalization.CultureInfo.InvariantCulture) : "not answered (" + Error + ")";
}
