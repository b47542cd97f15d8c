using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>One release of interop between endpoint format 1.0 (the previous release) and 2.0 (this one), both ways.</summary>
public class EndpointFormatInteropTests
{
    // RecordGen.SampleEndpoint() as the previous release (format 1.0 only) encoded it, captured from that build.
    const string PreviousReleaseBytes =
        "0210aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01230866726f6e74656e64057765622d3102037765620b7777772e6578616d706c65030377656204c613000506fd0000000000000000000000000000050242c613000502683104c61200010d2f72756e2f6e65746e732f63310465746830010468747470060050";

    [Fact]
    public void A_record_written_by_the_previous_release_decodes_with_its_bookkeeping()
    {
        var record = RecordCodec.DecodeEndpoint(Convert.FromHexString(PreviousReleaseBytes), RecordGen.SampleEndpoint().Id);
        Assert.Equal(RecordGen.SampleEndpoint(), record);
    }

    [Fact]
    public void The_legacy_format_is_byte_for_byte_what_the_previous_release_reads()
    {
        // The previous release decodes exactly its own encoding, so these bytes are visible to it.
        Assert.Equal(PreviousReleaseBytes, Convert.ToHexStringLower(RecordCodec.Encode(RecordGen.SampleEndpoint(), EndpointFormat.Legacy)));
    }

    [Fact]
    public void The_current_format_leaves_out_the_id_and_the_local_bookkeeping()
    {
        var sample = RecordGen.SampleEndpoint();
        var bytes = RecordCodec.Encode(sample);
        Assert.Equal(RecordCodec.EndpointFormatVersion, bytes[1]);
        Assert.Equal(-1, bytes.AsSpan().IndexOf(Convert.FromHexString(sample.Id)));
        Assert.Equal(-1, bytes.AsSpan().IndexOf("/run/netns/c1"u8));
        Assert.Equal(-1, bytes.AsSpan().IndexOf("eth0"u8));
        Assert.Equal(EndpointFormat.Current, RecordCodec.EndpointFormatOf(bytes));
        Assert.Equal(EndpointFormat.Legacy, RecordCodec.EndpointFormatOf(Convert.FromHexString(PreviousReleaseBytes)));
    }

    [Fact]
    public void The_previous_release_rejects_the_current_format_so_it_is_only_written_when_no_old_member_is_left()
    {
        // The previous release accepted major version 1 only; 2.0 is a new major by design (a field was removed).
        Assert.Equal(2, RecordCodec.Encode(RecordGen.SampleEndpoint())[1] >> 4);
    }

    [Fact]
    public void A_legacy_record_keeps_its_own_id_for_the_edge_to_compare_with_the_key()
    {
        var record = RecordCodec.DecodeEndpoint(Convert.FromHexString(PreviousReleaseBytes), new string('b', 64));
        Assert.Equal(RecordGen.SampleEndpoint().Id, record.Id);
    }

    [Fact]
    public void A_current_record_under_a_key_that_is_no_id_is_rejected()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(RecordCodec.Encode(RecordGen.SampleEndpoint()), "not-an-id"));
        Assert.Contains("Id 'not-an-id'", ex.Message);
    }

    [Fact]
    public void The_legacy_format_needs_an_interface_name()
    {
        var replicated = RecordGen.SampleEndpoint() with { Netns = "", Ifname = "" };
        Assert.Throws<InvalidRecordException>(() => RecordCodec.Encode(replicated, EndpointFormat.Legacy));
    }

    [Fact]
    public void Another_endpoint_major_version_is_rejected()
    {
        var bytes = RecordCodec.Encode(RecordGen.SampleEndpoint());
        bytes[1] = 0x30;
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(bytes, RecordGen.SampleEndpoint().Id));
        Assert.Contains("bad format version 3.0; this build reads 1.x and 2.x", ex.Message);
    }
}
